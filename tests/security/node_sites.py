"""Environments made straight on the local node (a Linux user, a database and
its account, as env_setup.py makes them, without WordPress), an attacker's
SQL sent as the site's PHP would send it (mysqli as the site's Linux user and
database account, each statement as it is), and root's exact view of a
database (names and bodies read in hex) to prove what changed and what not."""

import atexit
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from django.conf import settings

for folder in ("backups", "environments", "nodes"):
    path = str(settings.BASE_DIR / "apps" / folder / "remote")
    if path not in sys.path:
        sys.path.append(path)

import backup_create  # noqa: E402,I001  (node-side programs: found through the path above)
import env_restore  # noqa: E402
import env_setup  # noqa: E402


def _readable_site_sql_runner() -> None:
    """On a node the programs run from their root-owned, world-readable
    directory; here they are imported from the checkout, which may be private
    to root (a temporary clone), while the site SQL runner runs as the site's
    user. A copy of it where that user can read it, as on a node."""
    folder = Path("/var/tmp") / f"pressluft-test-remote-{secrets.token_hex(4)}"
    folder.mkdir(mode=0o755)
    atexit.register(shutil.rmtree, folder, True)
    copy = folder / env_restore.SITE_SQL.name
    copy.write_bytes(env_restore.SITE_SQL.read_bytes())
    copy.chmod(0o644)
    env_restore.SITE_SQL = copy


_readable_site_sql_runner()

# The attacker's client: PHP's mysqli, one statement per query, errors answered.
PHP_CLIENT = r"""
$in = json_decode(stream_get_contents(STDIN), true);
mysqli_report(MYSQLI_REPORT_OFF);
$db = new mysqli('localhost', $in['user'], $in['password'], $in['database']);
$db->set_charset('utf8mb4');
$out = [];
foreach ($in['statements'] as $hex) {
    $result = $db->query(hex2bin($hex));
    $out[] = $result === false ? $db->error : null;
    if ($result instanceof mysqli_result) { $result->free(); }
}
echo json_encode($out);
"""


class NodeEnvironment:
    def __init__(self):
        self.name = "pl" + secrets.token_hex(6)
        self.password = secrets.token_hex(16)
        self.root = Path(f"/var/lib/pressluft-test-envs/{self.name}")

    def create(self) -> "NodeEnvironment":
        env_setup.ensure_user(self.name, self.root)
        env_setup.ensure_database(self.name, self.password)
        return self

    def remove(self) -> None:
        databases = [self.name, f"{self.name}_restore", f"{self.name}_prerestore", f"{self.name}_incoming",
                     f"{self.name}_aside"]
        root_sql("".join(f"DROP DATABASE IF EXISTS `{database}`;\n" for database in databases)
                 + f"DROP USER IF EXISTS '{self.name}'@'localhost';\n")
        subprocess.run(["userdel", self.name], capture_output=True)
        subprocess.run(["groupdel", self.name], capture_output=True)

    def sql(self, *statements: str, database: str | None = None) -> list[str | None]:
        """Each statement as the site's PHP would send it; the error of each (None: it worked)."""
        request = {"user": self.name, "password": self.password, "database": database or self.name,
                   "statements": [statement.encode().hex() for statement in statements]}
        done = subprocess.run(["runuser", "-u", self.name, "--", "php", "-r", PHP_CLIENT],
                              input=json.dumps(request), capture_output=True, text=True, cwd="/")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def sql_ok(self, *statements: str, database: str | None = None) -> None:
        errors = self.sql(*statements, database=database)
        assert errors == [None] * len(statements), list(zip(statements, errors))


@pytest.fixture
def attacker_and_victim():
    """Two environments on the node; the victim's database holds a row the attacker must never reach."""
    attacker, victim = NodeEnvironment().create(), NodeEnvironment().create()
    try:
        victim.sql_ok("CREATE TABLE wp_options (option_id INT PRIMARY KEY AUTO_INCREMENT, option_name VARCHAR(64), "
                      "option_value TEXT)",
                      "INSERT INTO wp_options (option_name, option_value) VALUES ('siteurl', 'https://victim.example')")
        yield attacker, victim
    finally:
        attacker.remove()
        victim.remove()


def loaded(attacker: NodeEnvironment, tmp_path) -> str:
    """The live database dumped as a backup takes it and loaded by the restore's own path."""
    incoming, _ = env_restore.database_names(attacker.name)
    backup = tmp_path / "database.sql"
    with backup.open("wb") as out:
        subprocess.run(backup_create.database_dump(attacker.name), stdout=out, check=True, cwd="/")
    env_restore.prepare_database(attacker.name, attacker.password, incoming)
    _, _, failure = env_restore.load_database(backup, attacker.name, attacker.password, incoming, attacker.name)
    assert failure is None, failure
    return incoming


def root_sql(statements: str, database: str | None = None) -> list[list[str]]:
    done = subprocess.run(["mariadb", "--batch", "--skip-column-names"] + ([database] if database else []),
                          input=statements, capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


def _text(hex_value: str) -> str:
    return bytes.fromhex(hex_value).decode("utf-8", "surrogateescape")


def tables(database: str) -> dict[str, str]:
    """Exact table name -> type."""
    rows = root_sql("SELECT HEX(TABLE_NAME), TABLE_TYPE FROM information_schema.TABLES "
                    f"WHERE TABLE_SCHEMA = '{database}'")
    return {_text(name): kind for name, kind in rows}


def triggers(database: str) -> dict[str, tuple]:
    """Exact trigger name -> (table, timing, event, order, body, sql_mode, definer)."""
    rows = root_sql("SELECT HEX(TRIGGER_NAME), HEX(EVENT_OBJECT_TABLE), ACTION_TIMING, EVENT_MANIPULATION, "
                    "ACTION_ORDER, HEX(ACTION_STATEMENT), SQL_MODE, DEFINER FROM information_schema.TRIGGERS "
                    f"WHERE TRIGGER_SCHEMA = '{database}'")
    return {_text(row[0]): (_text(row[1]), row[2], row[3], row[4], _text(row[5]), row[6], row[7]) for row in rows}


def without_definer(found: dict[str, tuple]) -> dict[str, tuple]:
    return {name: shape[:-1] for name, shape in found.items()}


def dump(database: str) -> bytes:
    """Everything in ``database`` (schema, rows, triggers, routines, events) as root sees it."""
    done = subprocess.run(["mariadb-dump", "--single-transaction", "--skip-lock-tables", "--skip-dump-date",
                           "--routines", "--triggers", "--events",
                           "--hex-blob", "--order-by-primary", database], capture_output=True, cwd="/")
    assert done.returncode == 0, done.stderr
    return done.stdout


def grants(name: str) -> list[str]:
    """The account's grants, except those on its own scratch databases (a restore's)."""
    return [row[0] for row in root_sql(f"SHOW GRANTS FOR '{name}'@'localhost'")
            if "\\\\_restore`" not in row[0] and "\\\\_prerestore`" not in row[0]]


def database_exists(database: str) -> bool:
    return bool(root_sql(f"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{database}'"))
