"""A restore swaps databases by moving tables (env_restore.py ``swap_tables`` /
``move_tables``); MariaDB moves no table with triggers to another database,
so the node drops the moved tables' triggers and creates them again beside
their tables. The trigger names, their tables' names and their bodies are the
site's text. Here the site (its own database account, through PHP's mysqli
as a plugin would) plants triggers and tables whose names and bodies hold
delimiter-looking strings, `;`, DELIMITER, comments, quotes, back-quotes and
line breaks, and triggers that write to another site's database and to
mysql.*; the restore must carry every one byte for byte or refuse with
nothing changed, and none of the site's text may act as root or reach
another database (docs/security.md)."""

import secrets

import pytest

from tests.security.node_sites import (  # noqa: F401  (attacker_and_victim: the fixture, shared)
    NodeEnvironment, attacker_and_victim, database_exists, dump, grants, loaded, tables, triggers, without_definer,
)

import env_restore  # noqa: E402,I001  (a node-side program: on the path node_sites sets)


def hostile_schema(attacker: NodeEnvironment, victim: NodeEnvironment, canary: str) -> dict:
    """Tables and triggers an attacker can make with its own account; the names used."""
    names = {
        "plain": "wp_posts",
        # Would end root's statement, run a client command, change the client's delimiter.
        "breaker": f"x`; DROP DATABASE `{victim.name}`; --\n\\! id\n DELIMITER ;\n#",
        # Shaped like another database's table.
        "elsewhere": f"{victim.name}`.`wp_options",
        "long": "表" * 48,  # its file name (5 bytes a character) at the file system's limit
        "longest": "l" * 63 + "`",
        "escapes": "t\tab\\N'\"$$x/*",
    }
    for table in names.values():
        quoted = "`" + table.replace("`", "``") + "`"
        attacker.sql_ok(f"CREATE TABLE {quoted} (a INT, option_name VARCHAR(64), option_value TEXT)",
                        f"INSERT INTO {quoted} (a) VALUES (0)")

    def q(name):
        return "`" + name.replace("`", "``") + "`"

    statements = [
        # Comments, quotes, back-quotes, delimiters and a write into the victim's database.
        f"CREATE TRIGGER {q('tr`' + chr(10) + '; DROP TABLE wp_posts; --x')} BEFORE INSERT ON {q(names['breaker'])} "
        "FOR EACH ROW BEGIN\n"
        "  -- a comment; DELIMITER ;\n"
        "  # another one; \\! id\n"
        "  /* DELIMITER $$ ; */ SET @a = 'it''s; DELIMITER ; \\' `x` $$';\n"
        "  SET @b = \"double; \\\" DELIMITER //\";\n"
        "  /*!99999 DROP DATABASE mysql */\n"
        "  SET @c = 'line\nbreak; DELIMITER ;;\n';\n"
        f"  INSERT INTO `{victim.name}`.`wp_options` (option_name, option_value) VALUES ('pwned', 'by trigger');\n"
        "END",
        # Privileges through mysql.*: fine as root, refused to the site.
        f"CREATE TRIGGER escalate AFTER INSERT ON {q(names['plain'])} FOR EACH ROW "
        "UPDATE mysql.global_priv SET Priv = '{\"access\": 1073741823}' "
        f"WHERE User = '{attacker.name}'",
        # "delimiter" where the client looks for its command (a line that starts with it is refused
        # in a dump, see the update tests; planted below where no dump carries it).
        f"CREATE TRIGGER {q('delimiter ;')} BEFORE INSERT ON {q(names['elsewhere'])} FOR EACH ROW BEGIN\n"
        "DECLARE delimiter INT DEFAULT 1;\n"
        "SET @x = 1 +\n"
        " delimiter DIV 1; -- the next line must stay a statement\n"
        "SET NEW.a = @x;\n"
        "END",
        # No backslash escapes: a string ending in a backslash, then text that would be a statement.
        "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES'",
        f"CREATE TRIGGER {q('表' * 48)} BEFORE INSERT ON {q(names['long'])} FOR EACH ROW "
        f"SET NEW.option_value = CONCAT('a\\', '; CREATE DATABASE {canary}; -- ', \"$$\")",
        "SET SESSION sql_mode = DEFAULT",
        f"CREATE TRIGGER `t\ta``b` AFTER UPDATE ON {q(names['escapes'])} FOR EACH ROW "
        f"DELETE FROM `{victim.name}`.`wp_options`",
    ]
    attacker.sql_ok(*statements)
    return names


def test_a_restore_carries_hostile_triggers_exactly_and_runs_none_of_them_as_root(attacker_and_victim, tmp_path):
    attacker, victim = attacker_and_victim
    canary = f"pl_canary_{secrets.token_hex(4)}"
    names = hostile_schema(attacker, victim, canary)
    live, (incoming, aside) = attacker.name, env_restore.database_names(attacker.name)
    before_victim, before_grants = dump(victim.name), grants(attacker.name)
    planted = triggers(live)
    assert len(planted) == 5 and all(shape[-1] == f"{attacker.name}@localhost" for shape in planted.values())

    # The restore's own path: a dump of the site (as a backup takes it), loaded by the site's account.
    loaded(attacker, tmp_path)
    # What the backup held may be anything the site wrote: one more trigger planted in the fresh database.
    # Its lines that start with "delimiter": the mariadb client would drop the line break after each
    # (then the comment would swallow the next line); carried without the client, they stay.
    attacker.sql_ok("CREATE TRIGGER `planted\n-- delimiter` BEFORE DELETE ON wp_posts FOR EACH ROW BEGIN\n"
                    "DECLARE delimiter INT DEFAULT 1;\nSET @z = 1 +\ndelimiter DIV 1; -- a comment\n"
                    "SET @z = 2;\n"
                    "delimiter: LOOP LEAVE delimiter; END LOOP;\nSET @y = ';$$';\nEND", database=incoming)
    restored = triggers(incoming)
    # The dump and its load (comments kept) left every body as the site wrote it.
    assert without_definer({k: v for k, v in restored.items() if k != "planted\n-- delimiter"}) == \
        without_definer(planted)
    assert set(tables(incoming)) == set(names.values())

    env_restore.swap_tables(live, incoming, aside, attacker.password)

    # Carried byte for byte both ways, created again by the site's own account.
    assert set(tables(live)) == set(names.values()) and set(tables(aside)) == set(names.values())
    assert tables(incoming) == {}
    assert without_definer(triggers(live)) == without_definer(restored)
    assert without_definer(triggers(aside)) == without_definer(planted)
    assert {shape[-1] for shape in [*triggers(live).values(), *triggers(aside).values()]} == {
        f"{attacker.name}@localhost"}

    # Nothing of the site's text ran as root or reached another database.
    assert dump(victim.name) == before_victim
    assert grants(attacker.name) == before_grants
    assert not database_exists(canary)

    # Fired by the site, the triggers act with the site's rights only.
    errors = attacker.sql(*(f"INSERT INTO `{table.replace('`', '``')}` (a) VALUES (1)" for table in names.values()),
                          "UPDATE `" + names["escapes"].replace("`", "``") + "` SET a = 2")
    assert "denied" in errors[1] and "denied" in errors[0]  # breaker -> victim's table; escalate -> mysql.*
    assert "denied" in errors[-1]
    assert errors[2] is None and errors[3] is None and errors[4] is None
    assert dump(victim.name) == before_victim
    assert grants(attacker.name) == before_grants

    # Put back (as env_restore's revert does): the previous triggers come back exactly.
    env_restore.create_scratch_database(attacker.name, incoming)
    env_restore.move_tables([(live, incoming, table) for table, _ in env_restore.tables_of(live)]
                            + [(aside, live, table) for table, _ in env_restore.tables_of(aside)],
                            attacker.name, attacker.password)
    assert without_definer(triggers(live)) == without_definer(planted)
    assert without_definer(triggers(incoming)) == without_definer(restored)
    env_restore.drop_scratch_databases(attacker.name)
    assert dump(victim.name) == before_victim


def test_a_failed_table_move_puts_the_dropped_triggers_back(attacker_and_victim):
    attacker, victim = attacker_and_victim
    hostile_schema(attacker, victim, f"pl_canary_{secrets.token_hex(4)}")
    planted = triggers(attacker.name)
    incoming, _ = env_restore.database_names(attacker.name)
    env_restore.create_scratch_database(attacker.name, incoming)
    attacker.sql_ok("CREATE TABLE wp_posts (a INT)", database=incoming)  # the RENAME's target name is taken
    with pytest.raises(Exception):
        env_restore.move_tables([(attacker.name, incoming, table) for table, _ in env_restore.tables_of(attacker.name)],
                                attacker.name, attacker.password)
    assert triggers(attacker.name) == {name: (*shape[:-1], f"{attacker.name}@localhost")
                                       for name, shape in planted.items()}
    assert set(tables(incoming)) == {"wp_posts"}
