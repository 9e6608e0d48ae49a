"""`garage createsuperuser`: Django's command, made to fail loudly where it would quietly do nothing.

Django's own command skips its work with exit status 0 when there is no terminal to ask on (a script, a container
start-up), and with --noinput and no password it makes an administrator who cannot sign in. Here both are readable
errors with exit status 2 that name the variables which make it work.
"""
import os

from django.contrib.auth.management.commands import createsuperuser
from django.core.management.base import CommandError

EMAIL_VARIABLE = "DJANGO_SUPERUSER_EMAIL"
PASSWORD_VARIABLE = "DJANGO_SUPERUSER_PASSWORD"
HOW_WITHOUT_TERMINAL = (f"Without a terminal, `garage createsuperuser --noinput` takes the administrator's email from "
                        f"{EMAIL_VARIABLE} (or --email) and the password from {PASSWORD_VARIABLE}.")


class Command(createsuperuser.Command):
    help = f"Create an administrator, who signs in with an email and a password. {HOW_WITHOUT_TERMINAL}"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        for action in parser._actions:
            if action.dest == "interactive":
                action.help = f"Ask nothing: read the email and password from {EMAIL_VARIABLE} and {PASSWORD_VARIABLE}."

    def handle(self, *args, **options):
        if options["interactive"] and not self._has_terminal():
            raise CommandError(f"There is no terminal to ask for the administrator's email and password. "
                               f"{HOW_WITHOUT_TERMINAL}", returncode=2)
        if not options["interactive"]:
            given = {EMAIL_VARIABLE: options.get("email") or os.environ.get(EMAIL_VARIABLE),
                     PASSWORD_VARIABLE: os.environ.get(PASSWORD_VARIABLE)}
            missing = [name for name, value in given.items() if not value]
            if missing:
                raise CommandError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set. "
                                   f"{HOW_WITHOUT_TERMINAL}", returncode=2)
        try:
            super().handle(*args, **options)
        except CommandError as exc:  # an email already taken or not valid: bad input, like every CLI error here
            raise CommandError(str(exc).removeprefix("Error: "), returncode=2) from None

    def _validate_username(self, username, verbose_field_name, database):
        # Emails are stored in lower case (User.save): checked as stored, "Ann@…" is taken when "ann@…" exists, a
        # readable error instead of the database's refusal.
        return super()._validate_username(username.strip().lower(), verbose_field_name, database)

    def _has_terminal(self) -> bool:
        return hasattr(self.stdin, "isatty") and self.stdin.isatty()
