"""A restore swaps databases by moving tables (env_restore.py ``swap_tables``);
MariaDB moves no view to another database, so the node reads live's views,
keeps them for the way back, drops them, moves the tables and creates the
restored views in live as the site's own database account (each statement
sent as it is, no client reading it as a script). View names and bodies are
the site's text. Here the site (its own account, through PHP's mysqli as a
plugin would) plants views whose names and column names hold back-quotes,
line breaks, lines that start with "delimiter", ``\\!`` after ``--`` and
comments; and a definition whose DEFINER is root, or that reads another
site's database, stands for a dump that names another account. Each must be
carried byte for byte with the site as its definer, or refused with nothing
changed; none of it may act as root or reach another database
(docs/security.md)."""

import secrets
import subprocess

import pytest

from tests.security.node_sites import (  # noqa: F401  (attacker_and_victim: the fixture, shared)
    NodeEnvironment, attacker_and_victim, database_exists, dump, grants, loaded, root_sql, tables,
)

import backup_create  # noqa: E402,I001  (node-side programs: on the path node_sites sets)
import env_restore  # noqa: E402


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def views(database: str) -> dict[str, tuple]:
    """Exact view name -> (body as the server keeps it, check option, security, definer), read by root in hex."""
    rows = root_sql("SELECT HEX(TABLE_NAME), HEX(VIEW_DEFINITION), CHECK_OPTION, SECURITY_TYPE, DEFINER, ALGORITHM "
                    f"FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{database}'")
    return {bytes.fromhex(row[0]).decode(): (bytes.fromhex(row[1]).decode().replace(f"`{database}`.", ""), *row[2:])
            for row in rows}


def rows(environment: NodeEnvironment, view: str, database: str | None = None) -> list[list[str]]:
    return root_sql(f"SELECT * FROM {q(database or environment.name)}.{q(view)} ORDER BY 1")


def swap_back(environment: NodeEnvironment, incoming: str, aside: str, keep) -> None:
    """The way back, as revert takes it: the restored views dropped, the tables back, the kept views created again."""
    live = environment.name
    env_restore.drop_views(live, environment.password, live)
    env_restore.create_scratch_database(live, incoming)
    env_restore.move_tables([(live, incoming, table) for table, _ in env_restore.tables_of(live)]
                            + [(aside, live, table) for table, _ in env_restore.tables_of(aside)],
                            live, environment.password)
    env_restore.create_views(live, environment.password, live, env_restore.saved_views(keep))


HOSTILE_NAME = "v`; DROP DATABASE mysql; --\n\\! id\n DELIMITER ;\n#"
# Column names with "\\!" after "--", comments, DELIMITER; the second with a line that starts with "delimiter"
# (in a dump, the mariadb client's command: such a dump is refused).
HOSTILE_COLUMN = "c\n-- \\! touch /tmp/pl-view-canary\n/* x */ #\n DELIMITER ;\nz"
CLIENT_COMMAND_COLUMN = "c\ndelimiter ;\n-- \\! touch /tmp/pl-view-canary\n/* x */ #"


def plant(environment: NodeEnvironment, database: str | None, canary: str, titles: list[str],
          column: str = HOSTILE_COLUMN) -> None:
    """Tables and views the site makes with its own account (a view on a view named so it sorts first)."""
    environment.sql_ok(
        "CREATE TABLE wp_posts (ID INT PRIMARY KEY, post_title TEXT)",
        "INSERT INTO wp_posts VALUES " + ", ".join(f"({i}, '{title}')" for i, title in enumerate(titles, 1)),
        "CREATE VIEW wp_pl_recent AS SELECT ID, post_title FROM wp_posts",
        "CREATE VIEW a_on_recent AS SELECT post_title FROM wp_pl_recent WHERE ID > 1",
        f"CREATE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW {q(HOSTILE_NAME)} AS "
        f"SELECT ID AS {q(column)}, CONCAT('x; CREATE DATABASE {canary}; -- ', \"$$\", '\\n') AS b "
        "/* a comment; DELIMITER $$ */ FROM wp_posts WHERE ID > 0 -- trailing\n"
        "WITH CASCADED CHECK OPTION",
        database=database)


def test_a_restore_carries_hostile_views_exactly_as_the_site_and_keeps_the_previous_ones(attacker_and_victim,
                                                                                        tmp_path):
    attacker, victim = attacker_and_victim
    canary = f"pl_canary_{secrets.token_hex(4)}"
    live, (incoming, aside) = attacker.name, env_restore.database_names(attacker.name)
    plant(attacker, None, canary, ["one", "two", "three"])
    planted = views(live)
    assert len(planted) == 3 and {shape[-2] for shape in planted.values()} == {f"{live}@localhost"}
    incoming = loaded(attacker, tmp_path)
    assert views(incoming) == planted
    # The backup's data differs from live's from here on; one more view lives only in live.
    attacker.sql_ok("UPDATE wp_posts SET post_title = 'changed'", "CREATE VIEW only_live AS SELECT 1 AS a")
    # What the backup held may be anything: a view whose definer is root (as a dump naming another account).
    root_sql(f"CREATE DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW {q('by root')} AS "
             "SELECT COUNT(*) AS n FROM wp_posts", database=incoming)
    previous, restored = views(live), views(incoming)
    before_victim, before_grants = dump(victim.name), grants(attacker.name)
    keep = tmp_path / "work" / "views.json"

    env_restore.swap_tables(live, incoming, aside, attacker.password, keep=keep)

    # The restored views, byte for byte, all defined by the site's account (root's one too), on the restored data.
    after = views(live)
    assert set(after) == set(restored)
    assert {name: shape[:-2] + shape[-1:] for name, shape in after.items()} == \
        {name: shape[:-2] + shape[-1:] for name, shape in restored.items()}
    assert {shape[-2] for shape in after.values()} == {f"{live}@localhost"}
    assert rows(attacker, "wp_pl_recent") == [["1", "one"], ["2", "two"], ["3", "three"]]
    assert rows(attacker, "a_on_recent") == [["three"], ["two"]]
    assert set(tables(aside)) == {"wp_posts"} and views(aside) == {}
    # The previous ones kept, exactly, for the way back.
    assert {view.name for view in env_restore.saved_views(keep)} == set(previous)
    # Nothing of the site's text ran as root or reached another database.
    assert dump(victim.name) == before_victim and grants(attacker.name) == before_grants
    assert not database_exists(canary)
    errors = attacker.sql(f"INSERT INTO {q(HOSTILE_NAME)} ({q(HOSTILE_COLUMN)}) VALUES (0)")
    assert errors[0] and "CHECK OPTION failed" in errors[0]  # the check option came along

    # The way back (as revert does): restored views dropped, tables back, the kept views created again.
    swap_back(attacker, incoming, aside, keep)
    assert views(live) == previous
    assert rows(attacker, "wp_pl_recent") == [["1", "changed"], ["2", "changed"], ["3", "changed"]]
    env_restore.drop_scratch_databases(live)
    assert dump(victim.name) == before_victim and not database_exists(canary)


def test_a_view_that_cannot_be_created_as_the_site_refuses_the_swap_with_everything_back(attacker_and_victim,
                                                                                       tmp_path):
    attacker, victim = attacker_and_victim
    live, (incoming, aside) = attacker.name, env_restore.database_names(attacker.name)
    plant(attacker, None, f"pl_canary_{secrets.token_hex(4)}", ["one", "two"])
    incoming = loaded(attacker, tmp_path)
    # A definition naming root that reads another site's database: as root it would work; as the site, refused.
    root_sql(f"CREATE DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW steal AS "
             f"SELECT option_value FROM `{victim.name}`.wp_options", database=incoming)
    attacker.sql_ok("UPDATE wp_posts SET post_title = 'live'")
    before, before_views, before_incoming = dump(live), views(live), views(incoming)
    before_victim, before_grants = dump(victim.name), grants(attacker.name)

    with pytest.raises(env_restore.NodeError) as refused:
        env_restore.swap_tables(live, incoming, aside, attacker.password)

    assert refused.value.code == "remote_step_failed"
    assert "creating the views" in refused.value.message and "previous tables and views are back" \
        in refused.value.message
    assert views(live) == before_views and dump(live) == before
    assert set(tables(incoming)) == {"wp_posts", *before_incoming} and views(incoming) == before_incoming
    assert tables(aside) == {}
    assert dump(victim.name) == before_victim and grants(attacker.name) == before_grants
    env_restore.drop_scratch_databases(live)


def test_a_view_the_mariadb_client_would_change_is_refused_in_a_dump_and_carried_exactly_otherwise(
        attacker_and_victim, tmp_path):
    attacker, _ = attacker_and_victim
    live, (incoming, aside) = attacker.name, env_restore.database_names(attacker.name)
    plant(attacker, None, f"pl_canary_{secrets.token_hex(4)}", ["one"], CLIENT_COMMAND_COLUMN)
    # In a dump, a column name's line that starts with "delimiter" is the client's command: the load is refused.
    backup = tmp_path / "database.sql"
    with backup.open("wb") as out:
        subprocess.run(backup_create.database_dump(live), stdout=out, check=True, cwd="/")
    assert b"\ndelimiter ;" in backup.read_bytes()
    env_restore.prepare_database(live, attacker.password, incoming)
    _, _, failure = env_restore.load_database(backup, live, attacker.password, incoming, live)
    assert failure is not None and "delimiter" in failure.message
    assert views(live) and tables(aside) == {}
    # Planted straight into the fresh database (no client involved), it is carried byte for byte.
    root_sql(f"DROP DATABASE `{incoming}`")
    env_restore.prepare_database(live, attacker.password, incoming)
    plant(attacker, incoming, "pl_never", ["restored"], CLIENT_COMMAND_COLUMN)
    restored = views(incoming)
    env_restore.swap_tables(live, incoming, aside, attacker.password)
    assert views(live) == {name: shape[:-1] + (shape[-1],) for name, shape in restored.items()}
    assert rows(attacker, HOSTILE_NAME)[0][0] == "1"
    env_restore.drop_scratch_databases(live)


def test_a_restored_view_whose_table_is_gone_refuses_the_swap_and_a_broken_live_one_does_not(attacker_and_victim,
                                                                                             tmp_path):
    attacker, _ = attacker_and_victim
    live, (incoming, aside) = attacker.name, env_restore.database_names(attacker.name)
    plant(attacker, None, f"pl_canary_{secrets.token_hex(4)}", ["one"])
    incoming = loaded(attacker, tmp_path)
    # Live's view broken (an update changed what it reads): kept for the way back all the same.
    attacker.sql_ok("CREATE TABLE wp_gone (a INT)", "CREATE VIEW broken AS SELECT a FROM wp_gone", "DROP TABLE wp_gone")
    # The restored one broken (it cannot be created as it is): refused before anything changes.
    attacker.sql_ok("CREATE TABLE wp_gone (a INT)", "CREATE VIEW broken_too AS SELECT a FROM wp_gone",
                    "DROP TABLE wp_gone", database=incoming)
    # (mariadb-dump refuses such a database: compared table by table)
    before, before_views, before_rows = tables(live), views(live), rows(attacker, "wp_posts")
    keep = tmp_path / "views.json"
    with pytest.raises(env_restore.NodeError) as refused:
        env_restore.swap_tables(live, incoming, aside, attacker.password, keep=keep)
    assert "'broken_too'" in refused.value.message and "nothing was changed" in refused.value.message
    assert tables(live) == before and views(live) == before_views and rows(attacker, "wp_posts") == before_rows
    assert not database_exists(aside) and not keep.exists()

    root_sql(f"DROP VIEW `{incoming}`.broken_too")
    env_restore.swap_tables(live, incoming, aside, attacker.password, keep=keep)
    assert "broken" not in views(live) and {view.name: view.broken for view in env_restore.saved_views(keep)}[
        "broken"] is True
    # The way back creates what can be created; the broken one could not be before either.
    swap_back(attacker, incoming, aside, keep)
    assert views(live) == {name: shape for name, shape in before_views.items() if name != "broken"}
    assert rows(attacker, "wp_posts") == before_rows
    env_restore.drop_scratch_databases(live)
