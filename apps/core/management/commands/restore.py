"""`garage restore PATH [--force]`: load a `garage backup` archive into this (empty) database and put its files back.
Exit status 0 when the database is restored and every file it refers to is in place with its checksum; 2 with a
readable message when the archive is refused (nothing changed) or when files are missing or changed."""
from django.core.management.base import BaseCommand, CommandError

from apps.core.backup import SHOWN, backup_restore
from workers.common.errors import ReadableError


class Command(BaseCommand):
    help = ("Restore a backup made by `garage backup` into an empty database (migrated first when needed), put the "
            "files it carries back, and check every listed file against its checksum.")
    requires_system_checks = []  # as for `garage backup`

    def add_arguments(self, parser):
        parser.add_argument("archive", metavar="PATH", help="The .tar.gz written by `garage backup`.")
        parser.add_argument("--force", action="store_true",
                            help="Restore into a database that holds rows: every row here is deleted first.")

    def handle(self, *args, archive, force, **options):
        try:
            report = backup_restore(archive=archive, force=force)
        except ReadableError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        database = report.manifest["database"]
        self.stdout.write(f"Restored {archive}: {database['rows']:,} rows (backup made {report.manifest['created_at']} "
                          f"on {database['vendor']}).")
        checked = report.placed + report.verified
        self.stdout.write(f"  files: {report.placed} put back from the archive, {report.verified} found in place with "
                          f"their checksums" + (f", {report.remote} kept in the S3 bucket (not checked)"
                                                if report.remote else ""))
        for line in report.notes:
            self.stdout.write(f"note: {line}")
        for line in report.warnings:
            self.stderr.write(f"warning: {line}")
        if report.problems:
            lines = [f"The database was restored, but {len(report.missing) + len(report.changed) + len(report.missing_before)} "
                     f"of the files it refers to are not as the backup listed them ({checked} are):"]
            for label, names in (("missing", report.missing), ("changed since the backup (checksum differs)",
                                                                report.changed),
                                 ("missing already when the backup was made", report.missing_before)):
                lines += [f"  {label}: {name}" for name in names[:SHOWN]]
                if len(names) > SHOWN:
                    lines.append(f"  … and {len(names) - SHOWN} more {label.split(' (')[0]}")
            lines.append("Copy them back from where they are kept (or restore a backup made with --with-files).")
            raise CommandError("\n".join(lines), returncode=2)
