"""A new repository and its key (apps/backups/remote/restic_key.py): made by
the node itself with a cheap scrypt key (or restic init's calibrated key
swapped for one). restic itself opens and checks the repository, a wrong
password is still refused, what is stored reads back, and a repository restic
would refuse is removed again."""

import json
import subprocess
import sys
import uuid

from django.conf import settings

from tests.backups.conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, s3_client

for folder in ("backups", "environments", "nodes"):
    path = str(settings.BASE_DIR / "apps" / folder / "remote")
    if path not in sys.path:
        sys.path.append(path)

import backup_create  # noqa: E402  (node-side programs: found through the path above)
import restic_key  # noqa: E402


def _restic(repository, password, *args):
    env = {**backup_create.restic_env(repository), "RESTIC_PASSWORD": password}
    return subprocess.run([backup_create.RESTIC, "--no-cache", "-o", f"s3.region={REGION}", *args], env=env,
                          capture_output=True, timeout=120)


def test_a_new_repository_gets_a_cheap_key_restic_opens(s3_server, tmp_path, monkeypatch):
    monkeypatch.setattr(backup_create, "CACHE_DIR", str(tmp_path / "cache"))
    bucket = f"key-{uuid.uuid4().hex[:8]}"
    password = restic_key.os.urandom(32).hex()
    repository = {"url": f"s3:{s3_server}/{bucket}/sites/x", "password": password,
                  "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY, "region": REGION}
    assert backup_create.ensure_repository(repository) is True

    s3 = s3_client(s3_server)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="sites/x/keys/")["Contents"]]
    assert len(keys) == 1  # the calibrated key is gone
    stored = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    key_file = json.loads(stored)
    assert (key_file["kdf"], key_file["N"], key_file["r"], key_file["p"]) == ("scrypt", 1024, 8, 1)
    assert keys[0].rsplit("/", 1)[1] == restic_key.hashlib.sha256(stored).hexdigest()

    # restic opens it (with no other key to fall back on), and refuses a wrong password.
    assert _restic(repository, password, "cat", "config").returncode == 0
    wrong = _restic(repository, password[:-1] + ("0" if password[-1] != "0" else "1"), "cat", "config")
    assert wrong.returncode != 0 and b"wrong password" in wrong.stderr
    # A tampered key file is refused too (its MAC no longer matches).
    sealed = bytearray(restic_key.base64.b64decode(key_file["data"]))
    sealed[20] ^= 1
    try:
        restic_key.open_sealed(restic_key.derive(password, key_file), bytes(sealed))
    except restic_key.KeyError_ as exc:
        assert "MAC" in str(exc)
    else:
        raise AssertionError("a tampered key file was accepted")

    # Data goes in and comes back out through the new key.
    part = backup_create.stream_into_restic(repository, ["printf", "hello restic"], filename="hello.txt",
                                            tags=["part:test"], host="test", what="printf")
    dumped = _restic(repository, password, "dump", part["snapshot_id"], "hello.txt")
    assert dumped.returncode == 0 and dumped.stdout == b"hello restic"
    assert backup_create.ensure_repository(repository) is False  # a second run finds it, keys untouched
    assert len(s3.list_objects_v2(Bucket=bucket, Prefix="sites/x/keys/")["Contents"]) == 1


def _repository(s3_server, password="pw"):
    return {"url": f"s3:{s3_server}/key-{uuid.uuid4().hex[:8]}/sites/x", "password": password,
            "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY, "region": REGION}


def test_restic_checks_the_repository_made_here(s3_server, tmp_path, monkeypatch):
    monkeypatch.setattr(backup_create, "CACHE_DIR", str(tmp_path / "cache"))
    repository = _repository(s3_server, restic_key.os.urandom(32).hex())
    assert backup_create.ensure_repository(repository) is True
    backup_create.stream_into_restic(repository, ["head", "-c", "3000000", "/dev/urandom"], filename="random",
                                     tags=[], host="test", what="head")
    checked = _restic(repository, repository["password"], "check", "--read-data")
    assert checked.returncode == 0 and b"no errors were found" in checked.stdout, checked.stderr


def test_restic_init_s_calibrated_key_is_swapped(s3_server, tmp_path, monkeypatch):
    """Where restic init made the repository (the node could not), its key is made cheap afterwards."""
    monkeypatch.setattr(backup_create, "CACHE_DIR", str(tmp_path / "cache"))
    repository = _repository(s3_server, restic_key.os.urandom(32).hex())
    assert _restic(repository, repository["password"], "init").returncode == 0
    message = restic_key.make_cheap(repository, lambda: backup_create._opens(repository))
    assert "scrypt N=1024 r=8 p=1" in message
    bucket = repository["url"].split("/")[3]
    keys = s3_client(s3_server).list_objects_v2(Bucket=bucket, Prefix="sites/x/keys/")["Contents"]
    assert len(keys) == 1
    assert _restic(repository, repository["password"], "cat", "config").returncode == 0
    assert _restic(repository, "not the password", "cat", "config").returncode != 0


def test_a_repository_restic_refuses_is_removed_again(s3_server, tmp_path, monkeypatch):
    """A config restic will not open (a reducible chunker polynomial here) leaves nothing behind."""
    monkeypatch.setattr(backup_create, "CACHE_DIR", str(tmp_path / "cache"))
    assert not restic_key.irreducible((1 << 53) | (1 << 1))  # x^53 + x = x * (x^52 + 1)
    monkeypatch.setattr(restic_key, "chunker_polynomial", lambda: (1 << 53) | (1 << 1))
    repository = _repository(s3_server)
    try:
        restic_key.create_repository(repository, lambda: backup_create._opens(repository))
    except restic_key.KeyError_ as exc:
        assert "removed again" in str(exc)
    else:
        raise AssertionError("a repository restic refuses was kept")
    bucket = repository["url"].split("/")[3]
    assert "Contents" not in s3_client(s3_server).list_objects_v2(Bucket=bucket, Prefix="sites/x/")
