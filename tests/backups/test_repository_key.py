"""A repository and its key (apps/backups/remote/restic_key.py): a new one
made by the node itself with a cheap scrypt key (or restic init's calibrated
key swapped for one), an old one's calibrated key swapped at its next backup.
restic itself opens and checks the repository, a wrong password is still
refused, what is stored reads back, a repository restic would refuse is
removed again, and a forged key file in the bucket is refused before anything
is derived with it."""

import base64
import hashlib
import json
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from apps.backups import storage
from apps.jobs.models import Job
from tests.backups.conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, object_keys, s3_client

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


def _key_objects(s3_server, bucket, prefix) -> dict[str, dict]:
    """The repository's key files: name -> JSON."""
    s3 = s3_client(s3_server)
    return {key.rsplit("/", 1)[1]: json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            for key in object_keys(s3_server, bucket, f"{prefix}/keys/")}


@pytest.mark.django_db(transaction=True)
def test_an_old_repository_s_calibrated_key_is_made_cheap_at_its_next_backup(api_client, local_node, backup_storage,
                                                                              s3_server):
    from apps.jobs import runner
    from tests.backups.test_backup_e2e import back_up, restic
    from tests.sites.test_site_lifecycle_e2e import create_site, job_log

    site, production = create_site(api_client, "Kappa Keys", "kappa")
    try:
        # The repository as the panel made it before: restic init, with its calibrated key.
        config = storage.configured_storage()
        bucket, prefix = config.bucket, f"test/backups/sites/{site.pk}"
        restic(site, "init")
        (old_name, old_key), = _key_objects(s3_server, bucket, prefix).items()
        assert not restic_key.is_cheap(old_key)

        first = back_up(api_client, production, "db")
        assert first.status == "completed" and first.completed_at is not None
        log = job_log(Job.objects.get(payload__backup_id=str(first.pk)).pk)
        assert (f"repository key: scrypt N=1024 r=8 p=1 (was N={old_key['N']} r={old_key['r']} p={old_key['p']})"
                in log), log
        (new_name, new_key), = _key_objects(s3_server, bucket, prefix).items()
        assert new_name != old_name
        assert (new_key["kdf"], new_key["N"], new_key["r"], new_key["p"]) == ("scrypt", 1024, 8, 1)
        assert (new_key["username"], new_key["hostname"]) == (old_key["username"], old_key["hostname"])

        # restic opens the repository with the new key alone: the backup is there and reads back.
        listed = json.loads(restic(site, "snapshots", "--json", "--tag", f"backup:{first.pk}"))
        assert [snapshot["id"] for snapshot in listed] == [first.parts["db"]["snapshot_id"]]
        dump = restic(site, "dump", first.parts["db"]["snapshot_id"], "database.sql")
        assert hashlib.sha256(dump).hexdigest() == first.parts["db"]["sha256"] and b"Kappa Keys" in dump

        # The next backup finds the key cheap and leaves keys/ alone.
        second = back_up(api_client, production, "db")
        assert second.status == "completed"
        log = job_log(Job.objects.get(payload__backup_id=str(second.pk)).pk)
        assert "repository key" not in log and "calibrated key" not in log, log
        assert list(_key_objects(s3_server, bucket, prefix)) == [new_name]
    finally:
        response = api_client.delete(f"/api/sites/{site.id}")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])


def _forged_key(password: str, **kdf) -> bytes:
    """A key file a hostile writer of the bucket could store: any scrypt parameters."""
    key_file = {"created": "2026-01-01T00:00:00Z", "username": "root", "hostname": "node", "kdf": "scrypt", **kdf,
                "salt": base64.b64encode(b"s" * 64).decode(), "data": base64.b64encode(b"d" * 80).decode()}
    return json.dumps(key_file).encode()


def test_the_key_check_lists_keys_with_the_snapshots_and_refuses_forged_keys(s3_server, tmp_path, monkeypatch,
                                                                              capsys):
    """The backup's one listing gives keys/ and snapshots/ both; a forged only key
    (parameters that would cost hours or gigabytes) is refused before any derivation,
    and is left as it is; a repository with several keys is left alone; a new key restic
    does not open gives the calibrated one back."""
    monkeypatch.setattr(backup_create, "CACHE_DIR", str(tmp_path / "cache"))
    repository = _repository(s3_server, restic_key.os.urandom(32).hex())
    assert _restic(repository, repository["password"], "init").returncode == 0
    backup_create.stream_into_restic(repository, ["printf", "x"], filename="x", tags=[], host="test", what="printf")
    seen, requests, request = {}, [], restic_key.Bucket._request

    def counted(self, method, key="", body=b"", query=None, limit=None):
        requests.append((method, key, query))
        return request(self, method, key, body, query, limit)

    monkeypatch.setattr(restic_key.Bucket, "_request", counted)
    ids = backup_create._snapshot_ids(repository, seen)
    assert len(requests) == 1 and requests[0][2]["start-after"].endswith("/keys/"), requests  # one listing, both
    # A server that ignores start-after (it lists from config on): one listing per folder instead, same names.
    ignoring = {}

    def without_start_after(self, method, key="", body=b"", query=None, limit=None):
        return request(self, method, key, body, {k: v for k, v in (query or {}).items() if k != "start-after"}, limit)

    monkeypatch.setattr(restic_key.Bucket, "_request", without_start_after)
    assert backup_create._snapshot_ids(repository, ignoring) == ids and ignoring["keys"] == seen["keys"]
    monkeypatch.setattr(restic_key.Bucket, "_request", request)
    bucket = restic_key.Bucket(repository)
    assert ids == bucket.list("snapshots") and len(ids) == 1
    assert seen["keys"] == bucket.list("keys") and len(seen["keys"]) == 1
    calibrated = seen["keys"][0]

    # A second key (someone's own, restic key add): nothing is swapped, nothing said.
    (tmp_path / "other-password").write_text("another password\n")
    added = _restic(repository, repository["password"], "key", "add", "--new-password-file",
                    str(tmp_path / "other-password"))
    assert added.returncode == 0, added.stderr
    keys = bucket.list("keys")
    assert len(keys) == 2
    capsys.readouterr()
    backup_create.cheapen_key(repository, keys)
    assert capsys.readouterr().out == ""
    assert sorted(bucket.list("keys")) == sorted(keys)

    # Forged keys as the only key: refused, never derived, left in place.
    forged_repository = _repository(s3_server)
    forged_bucket = restic_key.Bucket(forged_repository)
    forged_bucket.create()
    for kdf, why in (({"N": 1 << 40, "r": 8, "p": 1}, "unexpected KDF parameters"),
                     ({"N": 1 << 15, "r": 8, "p": 1 << 30}, "unexpected KDF parameters"),
                     ({"N": "32768", "r": 8, "p": 1}, "unexpected KDF parameters"),
                     ({"N": 1 << 15, "r": 8, "p": 1, "kdf": "argon2"}, "not scrypt")):
        forged = _forged_key(forged_repository["password"], **kdf)
        name = hashlib.sha256(forged).hexdigest()
        forged_bucket.put(f"keys/{name}", forged)
        capsys.readouterr()
        backup_create.cheapen_key(forged_repository, forged_bucket.list("keys"))
        said = capsys.readouterr().out
        assert "keeps its calibrated key" in said and why in said, said
        assert forged_bucket.list("keys") == [name] and forged_bucket.get(f"keys/{name}") == forged
        forged_bucket.delete(f"keys/{name}")
    # A key file not matching its name, or far too big, is not read as a key either.
    forged = _forged_key(forged_repository["password"], N=1 << 15, r=8, p=1)
    for name, body, why in (("0" * 64, forged, "does not match its name"),
                            (None, forged + b" " * restic_key.MAX_KEY_FILE_BYTES, "more than")):
        name = name or hashlib.sha256(body).hexdigest()
        forged_bucket.put(f"keys/{name}", body)
        capsys.readouterr()
        backup_create.cheapen_key(forged_repository, forged_bucket.list("keys"))
        said = capsys.readouterr().out
        assert "keeps its calibrated key" in said and why in said, said
        assert forged_bucket.list("keys") == [name]
        forged_bucket.delete(f"keys/{name}")

    bucket.delete(f"keys/{next(key for key in keys if key != calibrated)}")
    # restic does not open the repository with the new key (here: told so): the calibrated key is put back.
    with pytest.raises(restic_key.KeyError_, match="the calibrated key is back"):
        restic_key.make_cheap(repository, lambda: False)
    assert bucket.list("keys") == [calibrated]
    assert _restic(repository, repository["password"], "cat", "config").returncode == 0

    # The real calibrated key is swapped by the same path, and restic opens the repository with the new one.
    capsys.readouterr()
    backup_create.cheapen_key(repository, [calibrated])
    assert "repository key: scrypt N=1024 r=8 p=1 (was N=" in capsys.readouterr().out
    (new_name,) = bucket.list("keys")
    assert new_name != calibrated and restic_key.is_cheap(json.loads(bucket.get(f"keys/{new_name}")))
    assert _restic(repository, repository["password"], "cat", "config").returncode == 0
    capsys.readouterr()
    backup_create.cheapen_key(repository, [new_name])  # cheap already: nothing happens
    assert capsys.readouterr().out == "" and bucket.list("keys") == [new_name]
