"""The node program's secrets stay root's: a command of the site's, run as the
site's user while restic stores its output (as the files part of a backup
is), prints its own environment, every process environment it can read and
every command line on the machine; none of that holds the repository
password or the storage keys."""

import os
import subprocess
import sys
import uuid

from django.conf import settings

from tests.backups.conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

for folder in ("backups", "environments", "nodes"):
    path = str(settings.BASE_DIR / "apps" / folder / "remote")
    if path not in sys.path:
        sys.path.append(path)

import backup_create  # noqa: E402  (a node-side program: found through the path above)

SNOOP = ("env; for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < \"$f\"; done 2>/dev/null; "
         "ps -eo args; cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '")


def test_a_site_command_sees_no_secret_of_the_backup(s3_server, tmp_path, monkeypatch):
    monkeypatch.setattr(backup_create, "CACHE_DIR", str(tmp_path / "cache"))
    password = f"repository-password-{uuid.uuid4().hex}"
    repository = {"url": f"s3:{s3_server}/secrets-{uuid.uuid4().hex[:8]}/sites/x", "password": password,
                  "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY, "region": REGION}
    assert backup_create.ensure_repository(repository) is True
    assert backup_create.ensure_repository(repository) is False  # a second run finds it
    part = backup_create.stream_into_restic(
        repository, ["runuser", "-u", "nobody", "--", "sh", "-c", SNOOP], filename="snoop.txt",
        tags=["part:test"], host="test", what="the site's command",
    )
    env = {"PATH": os.environ["PATH"], "HOME": "/root", "RESTIC_REPOSITORY": repository["url"],
           "RESTIC_PASSWORD": password, "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
           "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY}
    seen = subprocess.run(["restic", "--no-cache", "-o", f"s3.region={REGION}", "dump", part["snapshot_id"],
                           "snoop.txt"], env=env, capture_output=True, check=True, timeout=120).stdout
    assert part["bytes"] == len(seen) > 0
    assert b"restic" in seen  # it did see restic's command line
    for secret in (password, SECRET_ACCESS_KEY, ACCESS_KEY_ID):
        assert secret.encode() not in seen


def test_a_failed_command_leaves_no_snapshot(s3_server, tmp_path, monkeypatch):
    import pytest
    from nodelib import NodeError

    monkeypatch.setattr(backup_create, "CACHE_DIR", str(tmp_path / "cache"))
    repository = {"url": f"s3:{s3_server}/broken-{uuid.uuid4().hex[:8]}/sites/x", "password": "pw",
                  "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY, "region": REGION}
    backup_create.ensure_repository(repository)
    with pytest.raises(NodeError) as failed:
        backup_create.stream_into_restic(repository, ["sh", "-c", "echo half a dump; exit 3"], filename="db.sql",
                                         tags=[], host="test", what="mariadb-dump")
    assert failed.value.code == "remote_step_failed" and "exited 3" in failed.value.message
    listed = backup_create.restic(repository, ["snapshots", "--json"])
    assert listed.returncode == 0 and listed.stdout.strip() in ("[]", "null")
