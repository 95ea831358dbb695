"""Table names are the site's to choose: back-quotes, `;`, line breaks, `--`,
names shaped like another database's table, the longest names. The node
programs that handle another environment's tables by name must treat them
as data: the drift check (env_checksums.py) measures every one, tables
without a primary key included, as the site's own account; the copy of
protected tables of a refresh and the clone's copy (env_clone.py
``copy_database``) copy exactly the named tables into exactly the target;
a promotion (env_promote.py) refuses names it does not handle before it
changes anything. Another site's database stays as it was
(docs/security.md)."""

import pytest

from tests.security.node_sites import NodeEnvironment, database_exists, dump, root_sql, tables, triggers

import env_checksums  # noqa: E402,I001  (node-side programs: on the path node_sites sets)
import env_clone  # noqa: E402
import env_promote  # noqa: E402
import env_refresh  # noqa: E402
import promotion_presets  # noqa: E402


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@pytest.fixture
def sites():
    made = [NodeEnvironment().create() for _ in range(3)]
    try:
        yield made
    finally:
        for environment in made:
            environment.remove()


def hostile_names(victim: NodeEnvironment) -> list[str]:
    return [
        "wp_plain",
        f"wp_{victim.name}`.`wp_options",
        "wp_semi; DROP DATABASE mysql; --",
        "wp_line\nbreak\ndelimiter ;",
        "wp_-- comment",
        "wp_ünïcödé ☃",
        "wp_" + "x" * 61,
        "wp_back\\slash\tand tab",
    ]


def test_the_drift_check_measures_every_hostile_table_exactly(sites):
    production, victim, _ = sites
    victim.sql_ok("CREATE TABLE wp_options (a INT PRIMARY KEY)", "INSERT INTO wp_options VALUES (1)")
    before_victim = dump(victim.name)
    names = hostile_names(victim)
    for index, table in enumerate(names):
        # Every other one without a primary key; one with a hostile column name as its key.
        if index % 2:
            production.sql_ok(f"CREATE TABLE {q(table)} (v TEXT, `k``; --\nx` INT)")
        else:
            production.sql_ok(f"CREATE TABLE {q(table)} (`k``; --\nx` INT PRIMARY KEY, v TEXT)")
        production.sql_ok(f"INSERT INTO {q(table)} (`k``; --\nx`, v) VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    production.sql_ok("CREATE VIEW `wp_view``; DROP DATABASE mysql; --` AS SELECT 1 AS a")

    first = env_checksums.database_checksums(production.name, production.password, chunk_rows=2)
    assert sorted(first["tables"]) == sorted(names)
    assert all(measured["rows"] == 3 for measured in first["tables"].values())
    assert {measured["key"] for measured in first["tables"].values()} == {"integer", "none"}
    assert first["other_tables"] == ["wp_view`; DROP DATABASE mysql; --"]

    # A change in one hostile table is seen there and nowhere else.
    production.sql_ok(f"UPDATE {q(names[3])} SET v = 'changed' WHERE `k``; --\nx` = 2")
    second = env_checksums.database_checksums(production.name, production.password, chunk_rows=2)
    changed = [table for table in names if first["tables"][table]["checksum"] != second["tables"][table]["checksum"]]
    assert changed == [names[3]]
    assert dump(victim.name) == before_victim


def test_a_refresh_and_a_clone_copy_exactly_the_named_tables_into_exactly_the_target(sites):
    production, staging, victim = sites
    victim_names = ["wp_options", "wp_wc_orders", "wp_comments"]
    for table in victim_names:
        victim.sql_ok(f"CREATE TABLE {q(table)} (a INT)", f"INSERT INTO {q(table)} VALUES (1)")
    before_victim = dump(victim.name)
    protected = ["wp_comments", "wp_posts", f"wp_wc_orders`.`{victim.name}`.`wp_options",
                 "wp_wc_orders; DROP DATABASE mysql; --", "wp_wc_orders\n--delimiter ;\n\\! id",
                 "wp_wc_orders_" + "ü" * 30]
    for table in [*protected, "wp_options"]:
        production.sql_ok(f"CREATE TABLE {q(table)} (id INT PRIMARY KEY, v TEXT)",
                          f"INSERT INTO {q(table)} VALUES (1, {'0x' + table.encode().hex()})")
    staging.sql_ok("CREATE TABLE wp_options (id INT PRIMARY KEY, v TEXT)", "INSERT INTO wp_options VALUES (1, 'staging')")

    # The refresh's choice (names read in hex by root) and copy (mariadb-dump of those tables, loaded by staging).
    chosen = promotion_presets.protected_tables(env_refresh.production_tables(production.name), "wp_",
                                                "commerce-protect")
    assert sorted(chosen) == sorted(protected)
    env_clone.copy_database(production.name, staging.name, staging.password, tables=chosen)
    assert set(tables(staging.name)) == {*protected, "wp_options"}
    for table in protected:
        assert root_sql(f"SELECT HEX(v) FROM {q(table)}", staging.name) == [[table.encode().hex().upper()]]
    assert root_sql("SELECT v FROM wp_options", staging.name) == [["staging"]]  # not named, not copied

    # The clone's whole copy, with a trigger that writes elsewhere: created as the clone's account.
    production.sql_ok(f"CREATE TRIGGER {q('tr`' + chr(10) + '; --')} AFTER INSERT ON wp_posts FOR EACH ROW "
                      f"INSERT INTO `{victim.name}`.`wp_options` VALUES (NEW.id)")
    clone = NodeEnvironment().create()
    try:
        env_clone.copy_database(production.name, clone.name, clone.password)
        assert set(tables(clone.name)) == set(tables(production.name))
        assert [shape[-1] for shape in triggers(clone.name).values()] == [f"{clone.name}@localhost"]
        errors = clone.sql("INSERT INTO wp_posts VALUES (2, 'x')")
        assert "denied" in errors[0]
    finally:
        clone.remove()
    assert dump(victim.name) == before_victim


def test_a_promotion_refuses_table_names_it_does_not_handle_before_changing_anything(sites, tmp_path):
    production, staging, victim = sites
    victim.sql_ok("CREATE TABLE wp_options (a INT)", "INSERT INTO wp_options VALUES (1)")
    before_victim = dump(victim.name)
    for environment in (production, staging):
        environment.sql_ok("CREATE TABLE wp_options (option_id INT PRIMARY KEY, option_name VARCHAR(191), "
                           "option_value TEXT, autoload VARCHAR(20))")
    staging.sql_ok(f"CREATE TABLE {q('wp_posts`; DROP DATABASE ' + victim.name + '; --')} (a INT)",
                   f"CREATE TABLE {q('wp_comments' + chr(10) + 'x')} (a INT)")
    before_production = dump(production.name)
    promotion = env_promote.Promotion({
        "source": {"system_name": staging.name, "root": str(tmp_path / "staging"), "url": "https://s.example"},
        "target": {"system_name": production.name, "root": str(tmp_path / "production"), "url": "https://p.example",
                   "db_password": production.password},
        "preset": "content-protect", "prefix": "wp_", "release": "20261204-000000"})
    with pytest.raises(env_promote.NodeError) as refused:
        env_promote.plan(promotion)
    assert refused.value.code == "remote_step_failed" and "name promotion does not handle" in refused.value.message
    assert dump(production.name) == before_production
    assert not database_exists(promotion.incoming) and not database_exists(promotion.aside)
    assert dump(victim.name) == before_victim
