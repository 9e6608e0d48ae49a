"""`garage <command>`: the same as `python manage.py <command>`, runnable from any directory."""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "garage.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["garage", *sys.argv[1:]])


if __name__ == "__main__":
    main()
