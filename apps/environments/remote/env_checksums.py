#!/usr/bin/env python3
"""Checksums of one environment, for drift checks and their baselines: every
table of the site's prefix (row count and a checksum) and every path of its
current release and of its uploads (kind, size, SHA-256). Changes nothing.

Tables are read in one consistent snapshot (REPEATABLE READ, START
TRANSACTION WITH CONSISTENT SNAPSHOT) by the environment's own Linux user and
database account, never by root: the rows are the site's data. Each row is
hashed by the server (MD5 over the MD5 of every column's bytes, NULL marked)
and the rows are summed in chunks of ``chunk_rows`` rows ordered by the
primary key, so neither the server's answer nor this program ever holds a
table: one line per chunk comes back.
- a one-column integer primary key: keyset chunks (``WHERE pk > last``);
  each chunk is kept with its last key, so a comparison can say where rows changed;
- another primary key (text, several columns): chunks by offset in key order;
- no primary key: one unordered sum over the whole table, marked ``key: none``
  (rows without a key have no order to chunk by; the sum still counts every
  row, duplicates included).
Rows WordPress rewrites by itself (promotion_presets.VOLATILE_ROWS: caches,
the cron schedule, login sessions) are summed apart under ``volatile``.

Table and column names are the site's: they reach SQL only as hex literals
or as back-quoted identifiers with back-quotes doubled.

Files: the release is root's and sealed (release_files.seal) and is walked
as root; uploads are the site's and are walked as the site's user
(tree_digest.py). Neither walk follows a link.

Parameters (JSON on stdin): system_name, root, db_password, chunk_rows (optional).
"""

import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import env_setup
import promotion_presets
import safe_fs
import services
import tree_digest
from nodelib import LIB_DIR, NodeError, info, main, step

TABLE_PREFIX = "wp_"  # what wp-config.php.tmpl sets for every environment
DEFAULT_CHUNK_ROWS = 5000
INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "bigint"}
MAX_UPLOAD_ENTRIES = 2_000_000
SENTINEL = "pressluft-end-of-answer"
HEX = re.compile(r"^[0-9A-F]*$")
SAFE_LITERAL = re.compile(r"^[A-Za-z0-9_%\\]+$")


def quote_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def hex_literal(text: str) -> str:
    """A string the site chose, as SQL: a hex literal compared in binary."""
    return "X'" + text.encode("utf-8", "surrogateescape").hex() + "'"


def from_hex(value: str) -> str:
    if not HEX.match(value):
        raise NodeError("remote_step_failed", "the database answered something that is not hex")
    return bytes.fromhex(value).decode("utf-8", "surrogateescape")


class Session:
    """One mariadb client as the environment's account, fed a statement at a
    time: every answer ends with a sentinel row, so the snapshot opened first
    holds for every later statement."""

    def __init__(self, name: str, password: str):
        services.ensure_running("mariadb")
        self.process = subprocess.Popen(
            ["runuser", "-u", name, "--", "mariadb", "--no-defaults", "--batch", "--skip-column-names",
             "--unbuffered", "--default-character-set=utf8mb4", f"--user={name}", "--host=localhost", name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, MYSQL_PWD=password), cwd="/",
        )

    def query(self, statement: str) -> list[list[str]]:
        try:
            self.process.stdin.write(f"{statement};\nSELECT '{SENTINEL}';\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            self._died()
        rows = []
        while True:
            line = self.process.stdout.readline()
            if not line:
                self._died()
            line = line.rstrip("\n")
            if line == SENTINEL:
                return rows
            rows.append(line.split("\t"))

    def _died(self):
        self.process.kill()
        self.process.wait()
        tail = " | ".join(self.process.stderr.read().strip().splitlines()[-3:])[-300:]
        # A table created or altered by the site after the snapshot began: measuring again will do.
        retry = "Table definition has changed" in tail
        raise NodeError("remote_step_failed", f"the database session ended: {tail or 'no message'}", retryable=retry)

    def close(self):
        try:
            self.process.stdin.close()
        except BrokenPipeError:
            pass
        self.process.wait(timeout=30)


def row_hash(columns: list[str]) -> str:
    parts = ", ".join(f"IFNULL(MD5(CAST({quote_identifier(column)} AS BINARY)), 'N')" for column in columns)
    return f"MD5(CONCAT_WS(',', {parts}))"


def sums(expression: str = "pl_h") -> str:
    """Two sums of 60-bit slices of the row hashes: exact (DECIMAL), order-free."""
    return (f"SUM(CAST(CONV(SUBSTRING({expression}, 1, 15), 16, 10) AS UNSIGNED)), "
            f"SUM(CAST(CONV(SUBSTRING({expression}, 16, 15), 16, 10) AS UNSIGNED))")


def volatile_condition(table: str) -> str | None:
    found = promotion_presets.volatile_rows(table, TABLE_PREFIX)
    if found is None:
        return None
    column, exact, patterns = found
    for literal in exact + patterns:
        if not SAFE_LITERAL.match(literal):
            raise NodeError("bad_parameters", f"unexpected volatile row rule {literal!r}")
    tests = [f"{quote_identifier(column)} IN ({', '.join(repr(value) for value in exact)})"] if exact else []
    tests += [f"{quote_identifier(column)} LIKE '{pattern}'" for pattern in patterns]
    return f"COALESCE({' OR '.join(tests)}, 0)"


def chunk_digest(count: str, first: str, second: str) -> str:
    """One chunk's line: its row count and both sums (NULL, the sum of no rows, as 0)."""
    return f"{int(count)}:{0 if first == 'NULL' else int(first)}:{0 if second == 'NULL' else int(second)}"


def table_checksum(session: Session, table: str, chunk_rows: int) -> dict | None:
    name = hex_literal(table)
    columns = session.query(
        "SELECT HEX(COLUMN_NAME), DATA_TYPE FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {name} ORDER BY ORDINAL_POSITION")
    column_names = [from_hex(row[0]) for row in columns]
    if not column_names:
        return None  # dropped since the tables were listed
    types = {from_hex(row[0]): row[1].lower() for row in columns}
    key = [from_hex(row[0]) for row in session.query(
        "SELECT HEX(COLUMN_NAME) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
        f"AND TABLE_NAME = {name} AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX")]
    quoted = quote_identifier(table)
    hashed = row_hash(column_names)
    volatile = volatile_condition(table)
    where = f"{volatile} = 0" if volatile else "1"
    digest = hashlib.sha256()
    chunks = []
    rows = 0
    if len(key) == 1 and types.get(key[0]) in INTEGER_TYPES:
        kind = "integer"
        column = quote_identifier(key[0])
        last = None
        while True:
            after = f" AND {column} > {int(last)}" if last is not None else ""
            (count, high, first, second), = session.query(
                f"SELECT COUNT(*), MAX(pl_k), {sums()} FROM (SELECT {column} AS pl_k, {hashed} AS pl_h "
                f"FROM {quoted} WHERE {where}{after} ORDER BY {column} LIMIT {chunk_rows}) AS pl_chunk")
            if int(count) == 0:
                break
            line = chunk_digest(count, first, second)
            digest.update(line.encode() + b"\n")
            last = int(high)
            chunks.append([last, int(count), hashlib.sha256(line.encode()).hexdigest()[:16]])
            rows += int(count)
            if int(count) < chunk_rows:
                break
    elif key:
        kind = "ordered"
        order = ", ".join(quote_identifier(column) for column in key)
        offset = 0
        while True:
            (count, first, second), = session.query(
                f"SELECT COUNT(*), {sums()} FROM (SELECT {hashed} AS pl_h FROM {quoted} WHERE {where} "
                f"ORDER BY {order} LIMIT {chunk_rows} OFFSET {offset}) AS pl_chunk")
            if int(count) == 0:
                break
            digest.update(chunk_digest(count, first, second).encode() + b"\n")
            rows += int(count)
            offset += chunk_rows
            if int(count) < chunk_rows:
                break
    else:
        kind = "none"
        (count, first, second), = session.query(
            f"SELECT COUNT(*), {sums()} FROM (SELECT {hashed} AS pl_h FROM {quoted} WHERE {where}) AS pl_all")
        digest.update(chunk_digest(count, first, second).encode() + b"\n")
        rows = int(count)
    result = {"rows": rows, "checksum": digest.hexdigest(), "key": kind}
    if kind == "integer":
        result["chunks"] = chunks
    if volatile:
        (count, first, second), = session.query(
            f"SELECT COUNT(*), {sums()} FROM (SELECT {hashed} AS pl_h FROM {quoted} WHERE {volatile} = 1) AS pl_v")
        result["volatile"] = {"rows": int(count),
                              "checksum": hashlib.sha256(chunk_digest(count, first, second).encode()).hexdigest()}
    return result


def database_checksums(name: str, password: str, chunk_rows: int) -> dict:
    session = Session(name, password)
    try:
        session.query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        session.query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        listed = session.query(
            "SELECT HEX(TABLE_NAME), TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        tables, others = {}, []
        for hex_name, table_type in sorted(listed):
            table = from_hex(hex_name)
            if not table.startswith(TABLE_PREFIX) or table_type != "BASE TABLE":
                others.append(table)
                continue
            measured = table_checksum(session, table, chunk_rows)
            if measured is not None:
                tables[table] = measured
                info(f"{table}: {measured['rows']} rows")
        session.query("COMMIT")
    finally:
        session.close()
    return {"tables": tables, "other_tables": sorted(others)}


def release_paths(root: Path) -> tuple[str | None, dict]:
    release = safe_fs.current_release(root)
    if release is None:
        return None, {}
    path = safe_fs.check_release(root, release)
    return release, {entry: [kind, size, sha] for entry, kind, size, sha in tree_digest.walk(str(path))}


def upload_paths(name: str, root: Path) -> dict:
    """The uploads, walked by the site's user: what it prints is checked line by line."""
    process = subprocess.Popen(
        ["runuser", "-u", name, "--", "python3", "-I", "-S", str(LIB_DIR / "tree_digest.py"),
         str(root / "shared" / "uploads")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/",
    )
    found, ended = {}, False
    for raw in process.stdout:
        if ended or len(raw) > 20000 or len(found) > MAX_UPLOAD_ENTRIES:
            process.kill()
            raise NodeError("remote_step_failed", "the walk of the uploads gave an answer out of bounds")
        try:
            path, kind, size, sha = json.loads(raw)
        except ValueError:
            process.kill()
            raise NodeError("remote_step_failed", "the walk of the uploads gave an unreadable line") from None
        if kind == "end":
            ended = True
            continue
        if (not isinstance(path, str) or not path or kind not in ("file", "dir", "link", "other")
                or not isinstance(size, int) or not isinstance(sha, str) or len(sha) > 64):
            process.kill()
            raise NodeError("remote_step_failed", "the walk of the uploads gave an unexpected entry")
        found[path] = [kind, size, sha]
    error = process.stderr.read().decode(errors="replace")
    process.wait()
    if process.returncode != 0 or not ended:
        tail = " | ".join(error.strip().splitlines()[-2:])[-300:]
        raise NodeError("remote_step_failed", f"walking the uploads as {name} failed: {tail}")
    return found


def checksums(params: dict) -> dict:
    name = params["system_name"]
    if not env_setup.NAME.match(name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    root = Path(params["root"])
    chunk_rows = int(params.get("chunk_rows") or DEFAULT_CHUNK_ROWS)
    if not 1 <= chunk_rows <= 1_000_000:
        raise NodeError("bad_parameters", "chunk_rows must be between 1 and 1000000")

    step(f"checksum the tables of {name} (one snapshot, {chunk_rows} rows a chunk)")
    database = database_checksums(name, params["db_password"], chunk_rows)

    step("checksum the code of the current release")
    release, code = release_paths(root)
    info(f"release {release}: {len(code)} paths")

    step("checksum the uploads")
    uploads = upload_paths(name, root)
    info(f"uploads: {len(uploads)} paths")
    return dict(database, prefix=TABLE_PREFIX, release=release, code=code, uploads=uploads, chunk_rows=chunk_rows)


if __name__ == "__main__":
    main(checksums)
