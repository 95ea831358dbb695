"""The one function each for release names and database passwords."""

import re
import string
from datetime import datetime, timedelta, timezone
from pathlib import Path

import apps
from apps.core.passwords import new_database_password
from apps.environments import naming

APPS_DIR = Path(apps.__file__).parent
# The node programs that check a release name before using it.
NODE_RELEASE_CHECKS = {
    "environments/remote/env_deploy.py": "RELEASE",
    "environments/remote/env_rollback.py": "RELEASE",
    "nodes/remote/safe_fs.py": "RELEASE_NAME",
}


def node_release_patterns():
    for path, name in NODE_RELEASE_CHECKS.items():
        source = (APPS_DIR / path).read_text()
        found = re.search(rf'^{name} = re\.compile\(r"([^"]+)"\)$', source, re.MULTILINE)
        assert found, f"{name} not found in {path}"
        yield path, re.compile(found.group(1))


def test_a_new_release_name_is_accepted_by_every_node_program():
    names = [naming.new_release_name(), naming.new_release_name(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))]
    for path, pattern in node_release_patterns():
        for name in names:
            assert pattern.match(name), f"{path} refuses {name}"
        # Releases named before the microseconds were added stay valid.
        assert pattern.match("20260101T000000Z"), path


def test_a_release_name_is_the_utc_time_it_was_asked_for_to_the_microsecond():
    at = datetime(2026, 1, 2, 4, 4, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert naming.new_release_name(at) == "20260102T030405123456Z"
    # A job asks again with its own creation time (a retry): the same name.
    assert naming.new_release_name(at) == naming.new_release_name(at)


def test_database_passwords_are_32_letters_and_digits_and_differ():
    passwords = {new_database_password() for _ in range(20)}
    assert len(passwords) == 20
    for password in passwords:
        assert len(password) == 32
        assert set(password) <= set(string.ascii_letters + string.digits)
