from tests.backups.conftest import backup_storage, s3_request_log, s3_server  # noqa: F401
from tests.nodes.fixtures import *  # noqa: F401,F403
