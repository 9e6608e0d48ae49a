"""`garage backup [--output PATH] [--with-files]`: the database and a manifest of its files in one .tar.gz
(apps.core.backup says what is inside). Exit status 0 when written, 2 with a readable message when not."""
from django.core.management.base import BaseCommand, CommandError

from apps.core.backup import MEDIA, size_text, backup_write
from workers.common.errors import ReadableError


class Command(BaseCommand):
    help = ("Back up the database and the list of its stored files (uploads, trained models) into one .tar.gz; with "
            "--with-files, the files on this machine too. Restore it with `garage restore`.")
    # A backup reads the database and files only: the system checks (URLs, templates, deployment settings) would add
    # a second to every run and could refuse a backup of a server whose settings are being fixed.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--output", metavar="PATH",
                            help="The archive to write, or a folder to write it in (default: VAR_DIR/backups/).")
        parser.add_argument("--with-files", action="store_true",
                            help="Also copy the uploads and trained models kept on this machine into the archive.")

    def handle(self, *args, output, with_files, **options):
        try:
            report = backup_write(output=output, with_files=with_files)
        except ReadableError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        files = report.files
        included = [f for f in files if f.get("included")]
        local = [f for f in files if f["state"] == "local"]
        remote = [f for f in files if f["state"] == "remote"]
        missing = [f"{f['area']}/{f['path']} ({f['ref']})" for f in files if f["state"] == "missing"]
        self.stdout.write(f"Backup written: {report.path} ({size_text(report.bytes)})")
        self.stdout.write(f"  database: {report.rows:,} rows ({report.vendor})")
        if report.with_files:
            self.stdout.write(f"  files: {len(files)} listed, {len(included)} copied into the archive "
                              f"({size_text(sum(f['size'] for f in included))})")
        else:
            self.stdout.write(f"  files: {len(files)} listed with their checksums, not copied "
                              f"({len(local)} on this machine, {size_text(sum(f['size'] for f in local))}; "
                              f"add --with-files to copy them)")
        if remote:
            uploads = sum(f["area"] == MEDIA for f in remote)
            self.stdout.write(f"  {len(remote)} files are kept in the S3 bucket ({uploads} uploads, "
                              f"{len(remote) - uploads} model files): listed, not copied. Back up the bucket itself.")
        for line in report.warnings + [f"{name} is missing on this machine." for name in missing]:
            self.stderr.write(f"warning: {line}")
        self.stdout.write("Keep it private: it holds password hashes and the encrypted secrets, which only this "
                          "server's SECRET_KEY (or GARAGE_ENCRYPTION_KEY) opens.")
