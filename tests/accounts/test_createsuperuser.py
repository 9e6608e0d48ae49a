"""`garage createsuperuser`: the real console script in a subprocess whose stdin is not a terminal, as in a script
or a container's start-up."""
import subprocess
import sys
from pathlib import Path

import pytest

from apps.accounts.models import User
from tests.live import ROOT, child_env

GARAGE = Path(sys.executable).parent / "garage"
PASSWORD = "a long admin passphrase"

pytestmark = pytest.mark.django_db(transaction=True)  # the subprocess writes to the test database


def createsuperuser(*args, **variables) -> subprocess.CompletedProcess:
    env = child_env()
    for name in [name for name in env if name.startswith("DJANGO_SUPERUSER_")]:
        del env[name]  # only what the test passes
    env.update(variables)
    done = subprocess.run([str(GARAGE), "createsuperuser", *args], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)
    assert "manage.py" not in done.stdout + done.stderr  # the command people run is `garage`
    assert "Traceback" not in done.stderr
    return done


def test_it_refuses_to_ask_without_a_terminal_and_says_what_to_do_instead():
    done = createsuperuser()
    assert done.returncode == 2, done.stdout + done.stderr
    assert "There is no terminal" in done.stderr
    assert "garage createsuperuser --noinput" in done.stderr
    assert "DJANGO_SUPERUSER_EMAIL" in done.stderr and "DJANGO_SUPERUSER_PASSWORD" in done.stderr
    assert not User.objects.exists()


@pytest.mark.parametrize("variables, missing", [
    ({}, "DJANGO_SUPERUSER_EMAIL and DJANGO_SUPERUSER_PASSWORD are not set"),
    ({"DJANGO_SUPERUSER_EMAIL": "admin@example.com"}, "DJANGO_SUPERUSER_PASSWORD is not set"),
    ({"DJANGO_SUPERUSER_PASSWORD": PASSWORD}, "DJANGO_SUPERUSER_EMAIL is not set"),
])
def test_it_fails_without_the_variables_naming_the_missing_ones(variables, missing):
    done = createsuperuser("--noinput", **variables)
    assert done.returncode == 2, done.stdout + done.stderr
    assert missing in done.stderr
    assert not User.objects.exists()  # never an administrator who cannot sign in


def test_it_creates_an_administrator_who_signs_in_with_the_email_and_password_given():
    done = createsuperuser("--noinput", DJANGO_SUPERUSER_EMAIL="Admin@Example.com", DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    assert done.returncode == 0, done.stdout + done.stderr
    admin = User.objects.get()
    assert admin.email == "admin@example.com" and admin.is_superuser and admin.is_staff
    assert admin.check_password(PASSWORD)

    # The same email again, in other letter case, is refused readably (not by the database).
    done = createsuperuser("--noinput", "--email", "ADMIN@example.com", DJANGO_SUPERUSER_PASSWORD=PASSWORD)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "That email address is already taken." in done.stderr
    assert User.objects.count() == 1
