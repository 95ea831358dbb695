"""The serialized-safe search-replace (apps/environments/remote/
pressluft-search-replace.php) against a real MariaDB scratch database, with
PHP itself building and checking the serialized data."""

import json
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "apps/environments/remote/pressluft-search-replace.php"

OLD = "http://old.example"
NEW = "https://new.example"

# Test-side PHP: builds serialized values from tagged JSON trees and checks
# that PHP can unserialize what the program wrote. The two classes exist only
# here, so the program (which loads no classes) meets them as unknown classes.
PHP_HELPER = r"""<?php
#[AllowDynamicProperties] class Pl_Test_Widget {}
#[AllowDynamicProperties] class Some_Plugin_Settings {}
function build($n) {
    switch ($n[0]) {
        case 's': case 'i': case 'd': case 'b': return $n[1];
        case 'n': return null;
        case 'a': $a = []; foreach ($n[1] as [$k, $v]) { $a[$k] = build($v); } return $a;
        case 'o': $o = new $n[1](); foreach ($n[2] as [$k, $v]) { $o->{$k} = build($v); } return $o;
        case 'ser': return serialize(build($n[1]));
    }
    throw new Exception('bad node');
}
$in = json_decode(stream_get_contents(STDIN), true);
$out = [];
if ($in['op'] === 'build') {
    foreach ($in['cells'] as $cell) {
        $out[] = bin2hex($cell[0] === 'raw' ? $cell[1] : serialize(build($cell[1])));
    }
} else {
    foreach ($in['values'] as $hex) {
        $text = hex2bin($hex);
        // trim() as WordPress's maybe_unserialize() does.
        $core = trim($text);
        $out[] = $core === 'b:0;' || @unserialize($core, ['allowed_classes' => false]) !== false;
    }
}
echo json_encode($out);
"""


# --- MariaDB --------------------------------------------------------------------------------------

def _ping() -> bool:
    return subprocess.run(["mariadb-admin", "ping"], capture_output=True).returncode == 0


def _ensure_mariadb(log_dir: Path) -> None:
    if _ping():
        return
    run_dir = Path("/run/mysqld")
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.chown(run_dir, "mysql", "mysql")
    log = (log_dir / "mariadbd.log").open("ab")
    # Detached so it outlives this test session, as the node tests expect it running.
    subprocess.Popen(["mariadbd", "--user=mysql"], stdout=log, stderr=log,
                     stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if _ping():
            return
        time.sleep(0.1)
    tail = (log_dir / "mariadbd.log").read_text(errors="replace")[-2000:]
    pytest.fail(f"MariaDB is not running and could not be started (mariadbd):\n{tail}")


def _sql(statements: str, database: str | None = None) -> list[list[str]]:
    """Runs SQL as root over the unix socket; SQL travels on stdin."""
    argv = ["mariadb", "--batch", "--skip-column-names"] + ([database] if database else [])
    done = subprocess.run(argv, input=statements, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    _ensure_mariadb(tmp_path_factory.mktemp("mariadb"))
    token = secrets.token_hex(6)
    name = f"pl_sr_{token}"
    password = secrets.token_urlsafe(18)
    _sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
         f"CREATE USER '{name}'@'localhost' IDENTIFIED BY '{password}';"
         f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'localhost';")
    try:
        yield {"host": "localhost", "name": name, "user": name, "password": password}
    finally:
        _sql(f"DROP DATABASE IF EXISTS `{name}`; DROP USER IF EXISTS '{name}'@'localhost';")


def _hex(value: str | bytes) -> str:
    return (value.encode() if isinstance(value, str) else value).hex()


def make_table(db, table: str, values: list[str | bytes], *, primary_key: bool = True) -> None:
    key = "PRIMARY KEY" if primary_key else ""
    rows = ", ".join(f"({i}, CONVERT(X'{_hex(v)}' USING utf8mb4))" if v != b"" and v != ""
                     else f"({i}, '')" for i, v in enumerate(values, 1))
    _sql(f"DROP TABLE IF EXISTS `{table}`;"
         f"CREATE TABLE `{table}` (id INT NOT NULL {key}, v LONGTEXT) CHARACTER SET utf8mb4;"
         + (f"INSERT INTO `{table}` VALUES {rows};" if values else ""), db["name"])


def read_table(db, table: str) -> list[bytes]:
    rows = _sql(f"SELECT id, HEX(v) FROM `{table}` ORDER BY id", db["name"])
    return [bytes.fromhex(h) for _, h in rows]


def drop_tables(db) -> None:
    # In hex and back-quoted: a test gives a table a hostile name.
    tables = [bytes.fromhex(row[0]).decode() for row in _sql(
        "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()", db["name"])]
    if tables:
        _sql("DROP TABLE " + ", ".join("`" + t.replace("`", "``") + "`" for t in tables), db["name"])


def run_program(db, replacements, *, prefix="wp_", dry_run=False, **extra) -> dict:
    request = {"db": db, "prefix": prefix, "replacements": replacements, "dry_run": dry_run,
               **extra}
    done = subprocess.run(["php", str(PROGRAM)], input=json.dumps(request), capture_output=True,
                          text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, (done.stdout, done.stderr)
    answer = json.loads(lines[0])
    assert (done.returncode == 0) == answer["ok"], (done.returncode, answer, done.stderr)
    return answer


def php_helper(tmp_dir: Path, request: dict):
    script = tmp_dir / "helper.php"
    if not script.exists():
        script.write_text(PHP_HELPER)
    done = subprocess.run(["php", str(script)], input=json.dumps(request), capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def php_build(tmp_dir: Path, cells: list) -> list[bytes]:
    return [bytes.fromhex(h) for h in php_helper(tmp_dir, {"op": "build", "cells": cells})]


def php_unserializes(tmp_dir: Path, values: list[bytes]) -> list[bool]:
    return php_helper(tmp_dir, {"op": "check", "values": [v.hex() for v in values]})


@pytest.fixture
def db(scratch):
    drop_tables(scratch)
    yield scratch
    drop_tables(scratch)


def s(text: str) -> str:
    """PHP's serialization of a string: the length counts UTF-8 bytes."""
    return f's:{len(text.encode())}:"{text}";'


# --- An independent model of the replacement rules, for expectations ------------------------------

URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(//[^/?#\s]+)(.*)$", re.S)


def oracle(pairs):
    olds, guards = [], []
    for index, (old, new) in enumerate(pairs):
        variants = [(old, new)]
        old_url, new_url = URL.match(old), URL.match(new)
        if old_url and new_url:
            variants.append((old_url[2] + old_url[3], new_url[2] + new_url[3]))
        boundary = r"(?![A-Za-z0-9-]|\.[A-Za-z0-9])" if old_url and old_url[3] == "" else ""
        for src, dst in variants:
            seen = set()
            encodings = [(src, dst), (src.replace("/", "\\/"), dst.replace("/", "\\/")),
                         (quote(src, safe=""), quote(dst, safe=""))]
            for k, (enc_src, enc_dst) in enumerate(encodings):
                if enc_src in seen:
                    continue
                seen.add(enc_src)
                pattern = re.escape(enc_src)
                if k == 2:
                    pattern = re.sub(r"%([0-9A-Fa-f]{2})", r"%(?i:\1)", pattern)
                olds.append((len(enc_src), f"(?:{pattern}){boundary}", enc_dst))
                guards.append(enc_dst)
    olds.sort(key=lambda o: -o[0])
    old_only = re.compile("|".join(p for _, p, _ in olds), re.S)
    guard_patterns = [re.sub(r"%([0-9A-Fa-f]{2})", r"%(?i:\1)", re.escape(g))
                      for g in sorted(dict.fromkeys(guards), key=lambda g: -len(g))
                      if old_only.search(g)]
    alternatives = [f"(?P<g{i}>{p})" for i, p in enumerate(guard_patterns)]
    alternatives += [f"(?P<o{i}>{p})" for i, (_, p, _) in enumerate(olds)]
    combined = re.compile("|".join(alternatives), re.S)

    def replace(text: str) -> str:
        def one(m):
            name = m.lastgroup
            return m[0] if name.startswith("g") else olds[int(name[1:])][2]
        return combined.sub(one, text)
    return replace


def expected_tree(node, replace):
    kind = node[0]
    if kind == "s":
        return ["s", replace(node[1])]
    if kind == "a":
        return ["a", [[replace(k) if isinstance(k, str) else k, expected_tree(v, replace)]
                      for k, v in node[1]]]
    if kind == "o":
        return ["o", node[1], [[replace(k), expected_tree(v, replace)] for k, v in node[2]]]
    if kind == "ser":
        return ["ser", expected_tree(node[1], replace)]
    return node


# --- Property-based -------------------------------------------------------------------------------

FRAGMENTS = [
    "http://old.example", "https://old.example", "//old.example", "http:\\/\\/old.example",
    "https:\\/\\/old.example", "\\/\\/old.example", "http%3A%2F%2Fold.example",
    "http%3a%2f%2fold.example",
    "%2F%2Fold.example", "old.example", "http://old.example.org", "http://old.examplex",
    "/wp-content/uploads/a.jpg", "?a=1&b=2", " ", "é", "日本語", "😀", '"', "'", ";", "{", "}", ":",
    "\\", "\x00", "\n", "text", "s:3:", "a:2:{", "http://old.example/blog",
]
PAIRS = [
    [OLD, NEW],
    [OLD, "https://staging.example.net/sub"],
    [OLD, "http://old.example/blog"],  # the new URL contains the old one
]


def _not_serialized_looking(text: str) -> str:
    # A leaf that looks serialized but is not is left alone on purpose; keep
    # generated plain text clear of that case (unit tests cover it).
    core = text.strip(" \t\n\r\x00\x0b")
    return "x" + text if re.match(r"^(?:[aOCEsidbN]:|N;)", core) else text


texts = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=6).map(
    lambda parts: _not_serialized_looking("".join(parts)))
keys = st.one_of(st.integers(0, 50), st.sampled_from(
    ["home", "siteurl", "http://old.example/page", "//old.example/x", "k-é", "a b",
     "url_http%3A%2F%2Fold.example"]))
property_names = st.sampled_from(["title", "url", "link http://old.example", "é"])
leaves = st.one_of(
    texts.map(lambda t: ["s", t]),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: ["i", i]),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: ["d", f]),
    st.booleans().map(lambda b: ["b", b]),
    st.just(["n"]),
)


def _containers(children):
    return st.one_of(
        st.lists(children, max_size=4).map(lambda xs: ["a", [[i, x] for i, x in enumerate(xs)]]),
        st.lists(st.tuples(keys, children), max_size=4, unique_by=lambda kv: kv[0]).map(
            lambda kvs: ["a", [list(kv) for kv in kvs]]),
        st.tuples(st.sampled_from(["stdClass", "Pl_Test_Widget", "Some_Plugin_Settings"]),
                  st.lists(st.tuples(property_names, children), max_size=3,
                           unique_by=lambda kv: kv[0])).map(
            lambda t: ["o", t[0], [list(kv) for kv in t[1]]]),
        children.map(lambda c: ["ser", c]),
    )


trees = st.recursive(leaves, _containers, max_leaves=12)
cells = st.one_of(texts.map(lambda t: ["raw", t]), trees.map(lambda t: ["tree", t]))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(values=st.lists(cells, min_size=1, max_size=10), pair=st.sampled_from(PAIRS))
def test_generated_nested_data_is_rewritten_and_stays_valid(db, tmp_path, values, pair):
    replace = oracle([pair])
    expected_cells = [["raw", replace(v[1])] if v[0] == "raw"
                      else ["tree", expected_tree(v[1], replace)] for v in values]
    originals = php_build(tmp_path, values)
    expected = php_build(tmp_path, expected_cells)

    make_table(db, "wp_options", originals)
    answer = run_program(db, [pair])
    assert answer["ok"], answer
    assert answer["remaining"] == {OLD: 0}
    assert answer["skipped_cells"] == 0, answer["errors"]
    assert answer["cells_changed"] == sum(o != e for o, e in zip(originals, expected))

    after = read_table(db, "wp_options")
    assert after == expected
    tree_values = [a for a, v in zip(after, values) if v[0] == "tree"]
    assert all(php_unserializes(tmp_path, tree_values))

    again = run_program(db, [pair])
    assert again["cells_changed"] == 0 and again["remaining"] == {OLD: 0}
    assert read_table(db, "wp_options") == expected


# --- Cases ----------------------------------------------------------------------------------------

def rewrite(db, values, replacements=None, **extra) -> tuple[list[bytes], dict]:
    make_table(db, "wp_postmeta", values)
    answer = run_program(db, replacements or [[OLD, NEW]], **extra)
    assert answer["ok"], answer
    return [v.decode() for v in read_table(db, "wp_postmeta")], answer


def test_plain_json_urlencoded_and_protocol_relative_forms(db):
    after, answer = rewrite(db, [
        "Visit http://old.example/page and https://old.example.",
        '{"url":"http:\\/\\/old.example\\/x","cdn":"\\/\\/old.example\\/y"}',
        "?redirect=http%3A%2F%2Fold.example%2Fa&b=http%3a%2f%2fold.example",
        '<img src="//old.example/a.png">',
        "Elsewhere: http://old.example.org/x //old.examples old.example",
    ])
    assert after == [
        "Visit https://new.example/page and https://new.example.",
        '{"url":"https:\\/\\/new.example\\/x","cdn":"\\/\\/new.example\\/y"}',
        "?redirect=https%3A%2F%2Fnew.example%2Fa&b=https%3A%2F%2Fnew.example",
        '<img src="//new.example/a.png">',
        "Elsewhere: http://old.example.org/x //old.examples old.example",
    ]
    assert answer["cells_changed"] == 4 and answer["rows_changed"] == 4
    assert answer["remaining"] == {OLD: 0}
    assert answer["found"] == {OLD: 7}


def test_serialized_strings_get_byte_lengths_recomputed(db, tmp_path):
    inner_old = "a:1:{" + s("u") + s("http://old.example/a") + "}"
    inner_new = "a:1:{" + s("u") + s("https://new.example/a") + "}"
    multibyte_old = "é http://old.example 日本 😀"
    multibyte_new = "é https://new.example 日本 😀"
    after, answer = rewrite(db, [
        "a:1:{" + s("url") + s(OLD) + "}",
        "a:2:{" + s("inner") + s(inner_old) + s("n") + "i:5;}",
        "a:1:{i:0;" + s(multibyte_old) + "}",
        "a:1:{" + s(OLD + "/key") + "b:1;}",
        " a:1:{i:0;" + s(OLD) + "}\n",
    ])
    assert after == [
        "a:1:{" + s("url") + s(NEW) + "}",
        "a:2:{" + s("inner") + s(inner_new) + s("n") + "i:5;}",
        "a:1:{i:0;" + s(multibyte_new) + "}",
        "a:1:{" + s(NEW + "/key") + "b:1;}",
        " a:1:{i:0;" + s(NEW) + "}\n",
    ]
    assert "s:34:" in after[2] and len(multibyte_new) == 26  # bytes, not characters
    assert all(php_unserializes(tmp_path, [a.encode() for a in after]))
    assert answer["remaining"] == {OLD: 0}


def test_objects_of_known_and_unknown_classes_keep_their_class(db, tmp_path):
    private, protected = "\x00Acme_Thing\x00url", "\x00*\x00ref"
    after, answer = rewrite(db, [
        'O:8:"stdClass":2:{' + s("home") + s(OLD) + s("n") + "i:1;}",
        'O:10:"Acme_Thing":2:{' + s(private) + s(OLD + "/p")
        + s(protected) + s("//old.example") + "}",
        'a:2:{i:0;O:8:"stdClass":1:{' + s("u") + s(OLD) + "}i:1;r:2;}",
        'a:1:{i:0;O:10:"Acme_Thing":1:{' + s("cfg")
        + 'a:1:{i:0;O:8:"stdClass":1:{' + s("u") + s(OLD) + "}}}}",
    ])
    assert after == [
        'O:8:"stdClass":2:{' + s("home") + s(NEW) + s("n") + "i:1;}",
        'O:10:"Acme_Thing":2:{' + s(private) + s(NEW + "/p")
        + s(protected) + s("//new.example") + "}",
        'a:2:{i:0;O:8:"stdClass":1:{' + s("u") + s(NEW) + "}i:1;r:2;}",
        'a:1:{i:0;O:10:"Acme_Thing":1:{' + s("cfg")
        + 'a:1:{i:0;O:8:"stdClass":1:{' + s("u") + s(NEW) + "}}}}",
    ]
    assert all(php_unserializes(tmp_path, [a.encode() for a in after]))
    assert answer["remaining"] == {OLD: 0}


def test_values_without_old_forms_are_byte_identical_and_second_run_changes_nothing(db):
    untouched = [
        # Not PHP's canonical float: re-serializing it would churn the bytes.
        "a:1:{i:0;d:0.10000000000000001;}",
        "a:1:{i:0;s:99:\"broken\";}",
        "b:0;",
        "https://new.example/already",
        "",
        'O:8:"stdClass":0:{}',
    ]
    touched = "a:2:{i:0;d:0.10000000000000001;i:1;" + s(OLD) + "}"
    after, first = rewrite(db, [*untouched, touched])
    assert after[:-1] == untouched
    assert after[-1] == "a:2:{i:0;d:0.1;i:1;" + s(NEW) + "}"
    assert first["cells_changed"] == 1

    second = run_program(db, [[OLD, NEW]])
    assert second["cells_changed"] == 0 and second["rows_changed"] == 0
    assert [v.decode() for v in read_table(db, "wp_postmeta")] == after


def test_new_url_containing_the_old_one_is_idempotent(db):
    pair = [OLD, OLD + "/blog"]
    after, first = rewrite(db, [OLD + "/x", "a:1:{i:0;" + s("//old.example/y") + "}"], [pair])
    assert after == [OLD + "/blog/x", "a:1:{i:0;" + s("//old.example/blog/y") + "}"]
    assert first["remaining"] == {OLD: 0}
    second = run_program(db, [pair])
    assert second["cells_changed"] == 0 and second["remaining"] == {OLD: 0}


def test_only_tables_with_the_prefix_are_touched(db):
    make_table(db, "wp_posts", [OLD])
    make_table(db, "wpx_posts", [OLD])  # the _ of the prefix is not a wildcard
    make_table(db, "other_options", [OLD])
    answer = run_program(db, [[OLD, NEW]])
    assert answer["tables"] == 1 and answer["cells_changed"] == 1
    assert read_table(db, "wp_posts") == [NEW.encode()]
    assert read_table(db, "wpx_posts") == [OLD.encode()]
    assert read_table(db, "other_options") == [OLD.encode()]


def test_dry_run_changes_nothing_but_reports(db):
    values = [OLD, "a:1:{i:0;" + s(OLD) + "}", "nothing here"]
    make_table(db, "wp_options", values)
    answer = run_program(db, [[OLD, NEW]], dry_run=True)
    assert answer["ok"] and answer["dry_run"]
    assert answer["cells_changed"] == 2 and answer["rows_changed"] == 2
    assert answer["found"] == {OLD: 2} and answer["remaining"] == {OLD: 0}
    assert read_table(db, "wp_options") == [v.encode() for v in values]


def test_tables_without_primary_key_are_reported_and_counted(db):
    make_table(db, "wp_log", [OLD, "x " + OLD], primary_key=False)
    answer = run_program(db, [[OLD, NEW]])
    assert answer["skipped_tables"] == ["wp_log"]
    assert answer["remaining"] == {OLD: 2}
    assert read_table(db, "wp_log") == [OLD.encode(), ("x " + OLD).encode()]


def test_unsafe_serialized_values_are_left_alone_and_counted(db):
    values = [
        'C:11:"ArrayObject":' + str(len("x:i:0;" + s(OLD))) + ":{x:i:0;" + s(OLD) + "}",
        "a:1:{i:0;s:3:\"" + OLD + "\";}",  # corrupt length
        "a:0:{}x" + s(OLD),  # extra bytes after the value
    ]
    after, answer = rewrite(db, values)
    assert after == values
    assert answer["skipped_cells"] == 3 and answer["cells_changed"] == 0
    assert answer["remaining"] == {OLD: 3}


def test_composite_keys_and_small_batches(db):
    rows = ", ".join(f"({i % 3}, 'k{i}', CONVERT(X'{_hex(OLD + '/' + str(i))}' USING utf8mb4), 'x')"
                     for i in range(7))
    _sql("CREATE TABLE wp_multi (a INT, b VARCHAR(20), v TEXT, w VARCHAR(20), PRIMARY KEY (a, b))"
         " CHARACTER SET utf8mb4;"
         f"INSERT INTO wp_multi VALUES {rows};", db["name"])
    answer = run_program(db, [[OLD, NEW]], batch_size=2)
    assert answer["cells_changed"] == 7 and answer["remaining"] == {OLD: 0}
    stored = _sql("SELECT b, v FROM wp_multi ORDER BY b", db["name"])
    assert stored == [[f"k{i}", f"{NEW}/{i}"] for i in range(7)]


def test_bad_requests_fail_cleanly(db):
    bad = run_program(db, [[OLD, OLD]])
    assert not bad["ok"] and "replacement" in bad["error"]
    wrong = dict(db, password="not-" + db["password"])
    denied = run_program(wrong, [[OLD, NEW]])
    assert not denied["ok"] and "connect" in denied["error"]
    assert wrong["password"] not in denied["error"]


def test_several_pairs_longest_old_value_wins(db):
    pairs = [[OLD, NEW], [OLD + "/shop", "https://shop.example"],
             ["http://cdn.old.example", "https://cdn.example"]]
    after, answer = rewrite(db, [
        "a:1:{i:0;" + s(OLD + "/shop/cart " + OLD + "/about http://cdn.old.example/a.png") + "}",
    ], pairs)
    assert after == [
        "a:1:{i:0;"
        + s("https://shop.example/cart " + NEW + "/about https://cdn.example/a.png") + "}",
    ]
    assert answer["remaining"] == {OLD: 0, OLD + "/shop": 0, "http://cdn.old.example": 0}
    assert answer["found"] == {OLD: 1, OLD + "/shop": 1, "http://cdn.old.example": 1}


def test_hostile_names_are_identifiers_and_objects_of_phps_own_classes_are_never_made(db, tmp_path):
    """A site's names and rows are data: a table and a column named with
    back-quotes, `;`, `--` and line breaks are rewritten as they are, nothing
    else is touched; a serialized object of one of PHP's own classes stays an
    incomplete object (``allowed_classes`` false): DateTime's wakeup would
    refuse this one (not a date), so a program that made it could not
    rewrite it."""
    table, column = "wp_x`; DROP TABLE other_canary; --\nz", "v`; --\nc"

    def q(name):
        return "`" + name.replace("`", "``") + "`"

    date = 'O:8:"DateTime":3:{' + s("date") + s(OLD + "/not-a-date") + s("timezone_type") + "i:3;" \
        + s("timezone") + s("UTC") + "}"
    values = [date, "a:1:{i:0;" + date + "}", OLD + "/plain"]
    rows = ", ".join(f"({i}, X'{_hex(v)}')" for i, v in enumerate(values, 1))
    _sql(f"CREATE TABLE {q(table)} (id INT PRIMARY KEY, {q(column)} LONGTEXT) CHARACTER SET utf8mb4;"
         f"INSERT INTO {q(table)} VALUES {rows};"
         f"CREATE TABLE other_canary (id INT PRIMARY KEY, v TEXT); INSERT INTO other_canary VALUES (1, '{OLD}');",
         db["name"])
    answer = run_program(db, [[OLD, NEW]])
    assert answer["ok"] and answer["cells_changed"] == 3 and answer["remaining"] == {OLD: 0}
    after = [bytes.fromhex(h).decode() for _, h in _sql(f"SELECT id, HEX({q(column)}) FROM {q(table)} ORDER BY id",
                                                        db["name"])]
    new_date = date.replace(s(OLD + "/not-a-date"), s(NEW + "/not-a-date"))
    assert after == [new_date, "a:1:{i:0;" + new_date + "}", NEW + "/plain"]
    assert _sql("SELECT v FROM other_canary", db["name"]) == [[OLD]]

    # Every unserialize() the program makes says so itself.
    calls = [line for line in PROGRAM.read_text().splitlines()
             if re.search(r"(?<![\w])@?unserialize\(", line) and not line.lstrip().startswith(("*", "//", "/*"))]
    assert calls and all("'allowed_classes' => false" in line for line in calls), calls
