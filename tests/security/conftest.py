"""The S3 server on loopback of the backup tests (a restore and an update's
rollback read their dumps from a real restic repository)."""

from tests.backups.conftest import s3_request_log, s3_server  # noqa: F401  (the fixture, shared)
