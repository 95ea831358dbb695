"""A real S3 HTTP server on loopback (moto's server) for the backup tests,
and the panel's backup storage pointed at a fresh bucket of it."""

import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.nodes.fixtures import *  # noqa: F401,F403

ACCESS_KEY_ID = "PRESSLUFTTESTKEY"
SECRET_ACCESS_KEY = "pressluft-test-secret-0123456789"
REGION = "eu-central-1"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _moto_server() -> str:
    beside = Path(sys.executable).parent / "moto_server"
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        raise pytest.UsageError("moto_server is missing: install requirements.lock (moto[server]) into the venv")
    return found


@pytest.fixture(scope="session")
def s3_request_log(tmp_path_factory) -> Path:
    """Where moto's server writes a line per request (method, path, status)."""
    return tmp_path_factory.mktemp("moto") / "moto.log"


@pytest.fixture(scope="session")
def s3_server(s3_request_log):
    """moto's S3 on 127.0.0.1, on a free port, for the whole session: its endpoint URL."""
    port = _free_port()
    log = s3_request_log
    with open(log, "wb") as out:
        process = subprocess.Popen([_moto_server(), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def backup_storage(db, s3_server):
    """The panel's backup storage: a new bucket (made by restic's init) under a prefix."""
    from apps.core.models import PanelSettings

    panel = PanelSettings.load()
    panel.backup_s3_endpoint = s3_server
    panel.backup_s3_region = REGION
    panel.backup_s3_bucket = f"pressluft-{uuid.uuid4().hex[:12]}"
    panel.backup_s3_prefix = "test/backups"
    panel.backup_s3_access_key_id = ACCESS_KEY_ID
    panel.backup_s3_secret_access_key = SECRET_ACCESS_KEY
    panel.save()
    return panel


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY_ID,
                        aws_secret_access_key=SECRET_ACCESS_KEY)


def object_keys(endpoint: str, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def vanished_lock_reads(request_log: Path, bucket: str) -> list[str]:
    """Reads of a restic lock file that was gone (404) in ``bucket``: a restic
    that listed a lock another one removed before it read it. restic 0.14 reads
    such a lock again and again for about 40 s (backup_create.LockChecks)."""
    return [line for line in request_log.read_text(errors="replace").splitlines()
            if f"GET /{bucket}/" in line and "/locks/" in line and '" 404' in line]
