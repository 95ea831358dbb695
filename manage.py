#!/usr/bin/env python
import os
import pwd
import sys
from pathlib import Path


def run_as_data_directory_owner():
    """scripts/run runs the panel as an unprivileged user that owns the data
    directory. A command started as root switches to that user first: what it
    creates there (SQLite journals, static files, key files) must stay usable
    by the panel, and root must not follow paths that user controls."""
    if os.geteuid() != 0:
        return
    from pressluft.env import env_str  # standard library only: safe before Django

    data_dir = env_str("PRESSLUFT_DATA_DIR") or str(Path(__file__).resolve().parent / "var")
    try:
        owner = os.stat(data_dir)
    except OSError:
        return
    if owner.st_uid == 0:
        return
    try:
        account = pwd.getpwuid(owner.st_uid)
    except KeyError:
        sys.exit(f"{data_dir} belongs to uid {owner.st_uid}, which has no account; run this command as its owner")
    os.initgroups(account.pw_name, account.pw_gid)
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    os.environ.update(HOME=data_dir, USER=account.pw_name, LOGNAME=account.pw_name)
    print(f"manage.py: running as {account.pw_name}, the owner of {data_dir}", file=sys.stderr)


def main():
    run_as_data_directory_owner()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pressluft.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
