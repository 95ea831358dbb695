"""An update's database fingerprint and its rollback (env_update.py
``database_fingerprint``, ``restore_db``: tables made after the backup dropped) against a
site that chose its own table names and trigger texts: back-quotes, `;`,
line breaks, `--`, names shaped like another database's table, the longest
names MariaDB takes, and a comment the server reads as a comment where the
mariadb client sees a client command. The fingerprint must tell every table
apart, the rollback must load the pre-update dump with the site's rights
only and drop exactly the tables made after the backup, and another site's
database must stay as it was (docs/security.md)."""

import secrets
import uuid
from pathlib import Path

import pytest

from tests.backups.conftest import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.security.node_sites import NodeEnvironment, dump, grants, tables, triggers

import backup_create  # noqa: E402,I001  (node-side programs: on the path node_sites sets)
import env_update  # noqa: E402

from apps.environments import updates  # noqa: E402


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@pytest.fixture
def attacker_and_victim():
    attacker, victim = NodeEnvironment().create(), NodeEnvironment().create()
    try:
        yield attacker, victim
    finally:
        attacker.remove()
        victim.remove()


@pytest.fixture
def repository(s3_server, tmp_path, monkeypatch):
    """The site's backup repository in the S3 server; the node program's caches and dumps under tmp_path."""
    monkeypatch.setattr(backup_create, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(env_update, "DUMPS_DIR", tmp_path / "dumps")
    found = {"url": f"s3:{s3_server}/update-{uuid.uuid4().hex[:8]}/sites/x", "password": secrets.token_hex(16),
             "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY, "region": REGION}
    backup_create.ensure_repository(found)
    return found


def restore_pre_update_db(attacker: NodeEnvironment, part: dict, repository: dict) -> dict:
    """An update's rollback of the database: env_update.restore_db with what the panel sends."""
    return env_update.restore_db({"system_name": attacker.name, "snapshot_id": part["snapshot_id"],
                                  "sha256": part["sha256"], "repository": repository,
                                  "db_password": attacker.password})


def test_an_update_rollback_drops_exactly_the_sites_new_tables_and_runs_nothing_as_root(
        attacker_and_victim, repository):
    attacker, victim = attacker_and_victim
    before_names = [
        "wp_options",
        f"{victim.name}`.`wp_options",
        "semi; DROP DATABASE mysql; --",
        "line\nbreak",
        "-- comment",
        "ünïcödé ☃",
        # Alike in their first 63 characters; shown escaped they are longer than 64.
        "a" * 62 + "\x01b",
        "a" * 62 + "\x01c",
        "b" * 64,
    ]
    for table in before_names:
        attacker.sql_ok(f"CREATE TABLE {q(table)} (option_id INT PRIMARY KEY AUTO_INCREMENT, "
                        "option_name VARCHAR(191), option_value TEXT)")
    attacker.sql_ok(
        "INSERT INTO wp_options (option_name, option_value) VALUES ('db_version', '57155'), ('acme_version', '1.0')",
        "CREATE TRIGGER `x``; DROP DATABASE mysql; --\n DELIMITER ;` BEFORE INSERT ON wp_options FOR EACH ROW BEGIN\n"
        f"  SET @a = 'DELIMITER ;; `x` $$'; -- DELIMITER ;\n  INSERT INTO `{victim.name}`.wp_options VALUES (9);\nEND",
    )
    # The victim has tables of the same names as those the attacker's update will make.
    made_after = [f"{victim.name}`.`wp_users", "new`; DROP DATABASE `" + victim.name + "`; --", "new\nline",
                  "wp_options\nx", "c" * 64, "ñew ☃"]
    for table in ["wp_options", "wp_users", *made_after]:
        victim.sql_ok(f"CREATE TABLE {q(table)} (a INT)", f"INSERT INTO {q(table)} VALUES (1)")
    before_victim, before_grants = dump(victim.name), grants(attacker.name)
    planted_triggers = triggers(attacker.name)

    fingerprint = env_update.database_fingerprint(attacker.name)
    assert len(fingerprint["tables"]) == len(before_names)  # every table its own key
    assert fingerprint["versions"] == {"acme_version": "1.0", "db_version": "57155"}

    part = backup_create.stream_into_restic(repository, backup_create.database_dump(attacker.name),
                                            filename="database.sql", tags=["part:db"], host=attacker.name,
                                            what="mariadb-dump")

    # The update's code: new tables, a changed one, a new version.
    for table in made_after:
        attacker.sql_ok(f"CREATE TABLE {q(table)} (a INT)")
    attacker.sql_ok("ALTER TABLE " + q("a" * 62 + "\x01c") + " ADD COLUMN extra INT",
                    "UPDATE wp_options SET option_value = '2.0' WHERE option_name = 'acme_version'")
    changes = updates.database_changes(fingerprint, env_update.database_fingerprint(attacker.name))
    assert len([c for c in changes if c.endswith(" created")]) == len(made_after)
    assert [c for c in changes if c.endswith(" restructured")] == ["table " + "a" * 62 + "\\x01c restructured"]
    assert "option acme_version 1.0 → 2.0" in changes

    result = restore_pre_update_db(attacker, part, repository)
    assert result["restored"] is True
    assert sorted(tables(attacker.name)) == sorted(before_names)
    assert env_update.database_fingerprint(attacker.name) == fingerprint
    # The dump's triggers came back as they were, still the site's own.
    assert triggers(attacker.name) == planted_triggers
    # Nothing ran as root, nothing reached another database.
    assert dump(victim.name) == before_victim
    assert grants(attacker.name) == before_grants


def test_a_dump_the_client_would_read_as_a_shell_command_changes_nothing(
        attacker_and_victim, repository):
    """The server takes "--" and a control character for a comment; the
    mariadb client does not, and reads what follows as a client command
    (``\\!`` runs a shell command: as root, before this was loaded by the
    site's account). Loaded by the site's account in binary mode, the dump is
    refused before anything live changed."""
    attacker, victim = attacker_and_victim
    marker = Path(f"/var/lib/pressluft-test-marker-{secrets.token_hex(4)}")
    victim.sql_ok("CREATE TABLE wp_options (a INT)", "INSERT INTO wp_options VALUES (1)")
    attacker.sql_ok("CREATE TABLE wp_options (a INT)", "INSERT INTO wp_options VALUES (1)",
                    f"CREATE TRIGGER shell BEFORE INSERT ON wp_options FOR EACH ROW SET @a = 1 --\x01 \\! touch {marker}\n")
    before_victim, before_grants = dump(victim.name), grants(attacker.name)
    part = backup_create.stream_into_restic(repository, backup_create.database_dump(attacker.name),
                                            filename="database.sql", tags=["part:db"], host=attacker.name,
                                            what="mariadb-dump")
    attacker.sql_ok("CREATE TABLE wp_made_by_the_update (a INT)", "INSERT INTO wp_options VALUES (2)")
    live = dump(attacker.name)
    with pytest.raises(env_update.NodeError) as refused:
        restore_pre_update_db(attacker, part, repository)
    assert refused.value.code == "remote_step_failed" and "Unknown command" in refused.value.message
    assert dump(attacker.name) == live  # nothing live changed
    assert tables(f"{attacker.name}_restore") == {}  # the fresh database went again
    assert not marker.exists()
    assert dump(victim.name) == before_victim and grants(attacker.name) == before_grants


def test_a_dump_is_loaded_with_the_sites_account_only(attacker_and_victim, repository):
    """A dump that names another database (a forged snapshot's content, which
    only the checksum keeps out) acts with the site's rights: refused there."""
    attacker, victim = attacker_and_victim
    victim.sql_ok("CREATE TABLE wp_options (a INT)", "INSERT INTO wp_options VALUES (1)")
    before_victim = dump(victim.name)
    forged = f"CREATE TABLE wp_posts (a INT);\nDROP TABLE `{victim.name}`.`wp_options`;\n"
    part = backup_create.stream_into_restic(repository, ["printf", "%s", forged], filename="database.sql",
                                            tags=["part:db"], host=attacker.name, what="the forged dump")
    attacker.sql_ok("CREATE TABLE wp_options (a INT)")
    live = dump(attacker.name)
    with pytest.raises(env_update.NodeError) as refused:
        restore_pre_update_db(attacker, part, repository)
    assert refused.value.code == "remote_step_failed" and "denied" in refused.value.message
    assert dump(victim.name) == before_victim
    assert dump(attacker.name) == live


def test_a_dump_the_client_would_change_is_refused_with_nothing_changed(
        attacker_and_victim, repository):
    """A trigger name with a line break followed by "delimiter": in the dump
    that line starts with "delimiter", and the mariadb client drops the line
    break at its end, so the comment there would swallow the next line of the
    body. Refused before anything is loaded."""
    attacker, _ = attacker_and_victim
    attacker.sql_ok("CREATE TABLE wp_options (a INT)",
                    "CREATE TRIGGER `x\ndelimiter ;` BEFORE INSERT ON wp_options FOR EACH ROW BEGIN -- note\n"
                    "SET NEW.a = 7;\nEND")
    part = backup_create.stream_into_restic(repository, backup_create.database_dump(attacker.name),
                                            filename="database.sql", tags=["part:db"], host=attacker.name,
                                            what="mariadb-dump")
    attacker.sql_ok("CREATE TABLE wp_made_by_the_update (a INT)")
    live = dump(attacker.name)
    with pytest.raises(env_update.NodeError) as refused:
        restore_pre_update_db(attacker, part, repository)
    assert refused.value.code == "remote_step_failed" and 'starts with "delimiter"' in refused.value.message
    assert dump(attacker.name) == live
    assert tables(f"{attacker.name}_restore") == {}


def test_an_update_rollback_keeps_the_sites_views(attacker_and_victim, repository):
    """Views cannot move to another database with RENAME TABLE: the rollback
    creates the pre-update dump's views again in the live database as the
    site's own account, with the site as their definer (a view on a view
    included); views the update made are gone, and nothing ran as root."""
    attacker, victim = attacker_and_victim
    victim.sql_ok("CREATE TABLE wp_options (a INT)", "INSERT INTO wp_options VALUES (1)")
    attacker.sql_ok(
        "CREATE TABLE wp_posts (ID INT PRIMARY KEY, post_title TEXT)",
        "INSERT INTO wp_posts VALUES (1, 'before the update'), (2, 'second')",
        "CREATE VIEW wp_pl_recent AS SELECT ID, post_title FROM wp_posts",
        "CREATE VIEW `a_on; DROP DATABASE mysql; --\n DELIMITER ;` AS SELECT post_title FROM wp_pl_recent WHERE ID > 1",
    )
    before_views = env_update.env_restore.views_of(attacker.name, attacker.password, attacker.name)
    before_victim, before_grants = dump(victim.name), grants(attacker.name)
    part = backup_create.stream_into_restic(repository, backup_create.database_dump(attacker.name),
                                            filename="database.sql", tags=["part:db"], host=attacker.name,
                                            what="mariadb-dump")
    # The update's code: rows changed, a view replaced, one more made (a table's name in the dump).
    attacker.sql_ok("UPDATE wp_posts SET post_title = 'after the update'",
                    "CREATE OR REPLACE VIEW wp_pl_recent AS SELECT ID FROM wp_posts",
                    "CREATE VIEW wp_made_by_the_update AS SELECT 1 AS a")

    result = restore_pre_update_db(attacker, part, repository)

    assert result["restored"] is True
    assert tables(attacker.name) == {"wp_posts": "BASE TABLE", "wp_pl_recent": "VIEW",
                                     "a_on; DROP DATABASE mysql; --\n DELIMITER ;": "VIEW"}
    after = env_update.env_restore.views_of(attacker.name, attacker.password, attacker.name)
    assert [view.create for view in after] == [view.create for view in before_views]
    assert {view.definer for view in after} == {f"`{attacker.name}`@`localhost`"}
    rows = attacker.sql("CREATE TABLE probe AS SELECT post_title FROM `a_on; DROP DATABASE mysql; --\n DELIMITER ;`")
    assert rows == [None]
    assert dump(attacker.name).count(b"second") >= 1 and b"after the update" not in dump(attacker.name)
    assert dump(victim.name) == before_victim and grants(attacker.name) == before_grants
