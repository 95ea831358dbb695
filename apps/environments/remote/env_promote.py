#!/usr/bin/env python3
"""env_promote: push a staging (or clone) environment's code and non-protected
tables into its site's production environment on the same node, in phases the
panel runs one after the other (its job runs the health check between
``switch`` and ``finish``/``revert``), plus a read-only ``plan``.

Parameters (JSON on stdin), all produced by the panel:
  phase     "plan", "prepare", "switch", "prepare_switch", "finish", "revert" or "abandon"
  source    {"system_name", "root", "url"}  the environment promoted (read only)
  target    {"system_name", "root", "url", "db_password"}  production
  preset    "content-protect" or "commerce-protect" (promotion_presets.py)
  prefix    the sites' table prefix (both environments have the same one)
  release   prepare: the name of the target's new release
  cache     {"hostnames", "key_prefix"}: the target's caches, purged after a switch
  keep      finish: how many releases the target keeps

- plan: for each table of either database (with the prefix), what a
  promotion would do (overwrite, create, keep because protected, keep because
  only production has it), rows in source and target and whether the contents
  are identical once the source's URLs are the target's; the code changes
  between the two current releases (files added, changed, removed). Changes
  nothing.
- prepare: the source's current release (checked: no link leading out of
  it) becomes a new target release, its files hardlinked; the source's
  non-protected tables are dumped (one consistent snapshot) and loaded, by the
  target's own database account, into a scratch database beside the live one
  (``<target>_promote``), where the URL rewrite runs, so it can only touch
  those copies; options that belong to the environment rather than its
  content (``KEEP_OPTIONS``) are taken over from the live table. Nothing live
  changes.
- switch: one ``RENAME TABLE`` moves every replaced live table into
  ``<target>_prepromote`` and every incoming one into the live database, then
  ``current`` points at the new release; the opcache told (php_opcache), caches purged.
- prepare_switch: prepare, then switch, in one run of this program (what the
  panel's job runs: one SSH round trip and one program start fewer; the two
  phases and their state file are exactly those run one after the other).
- finish: (healthy) the tables kept aside and the scratch databases dropped,
  old releases pruned, caches purged.
- revert: (unhealthy, or to undo a promotion whose finish has not begun) one
  ``RENAME TABLE`` puts every kept table back and moves the promoted ones out
  (tables the promotion created included), ``current`` back to the previous
  release; then the scratch databases and the new release go.
- abandon: (the swap back failed, production was restored from its
  pre-promotion backup by the panel) the state file and the promotion's
  release go; the tables it moved are kept for an operator.

Never written: the protected tables of the preset, tables only the target has
(kept: a plugin's table created in production after the clone may hold data
nobody else has), ``wp-content/uploads`` and ``wp-config.php`` (links into the
target's own ``shared/``; production keeps its own secrets and salts).

Idempotent and resumable: what was decided at prepare is kept in a root-only
state file (``/var/lib/pressluft/promote/<target>.json``); a phase run again
after a crash judges from the state and the databases (a RENAME either
happened completely or not at all) and never mixes two promotions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import env_clone
import env_deploy
import env_setup
import promotion_presets
import release_archive
import release_files
import php_opcache
import safe_fs
import services
import site_cache
from env_setup import NAME, link_current
from nodelib import NodeError, info, main, run, step, write_file

STATE_ROOT = Path("/var/lib/pressluft/promote")
# Options that describe the environment, not its content: production keeps its own.
# ``cron``: the copy's schedule was held back (and maybe run once by an operator,
# docs/staging-holds.md); production's events stay as production has them.
KEEP_OPTIONS = ("blog_public", "cron", "pressluft_held_mail")
TABLE_NAME = re.compile(r"^[A-Za-z0-9_$]{1,64}$")
TABLE_PREFIX = re.compile(r"^[A-Za-z0-9_]{1,32}$")
SHOWN = 200
CHUNK = 1024 * 1024
# Never compared as code: the links every release has into its own shared/, and the release's marker.
CODE_IGNORED = frozenset(release_files.SHARED_LINKS) | {".pressluft-complete"}


# --- parameters ----------------------------------------------------------------------------------

class Promotion:
    def __init__(self, params: dict):
        source, target = params.get("source") or {}, params.get("target") or {}
        for environment in (source, target):
            if not NAME.match(environment.get("system_name") or ""):
                raise NodeError("bad_parameters", "unexpected environment system name")
        if source["system_name"] == target["system_name"]:
            raise NodeError("bad_parameters", "an environment cannot be promoted onto itself")
        self.source, self.target = source["system_name"], target["system_name"]
        self.source_root, self.target_root = Path(source["root"]), Path(target["root"])
        self.source_url, self.target_url = source["url"], target["url"]
        self.password = target.get("db_password")
        self.preset = params.get("preset") or ""
        if self.preset not in promotion_presets.preset_names():
            raise NodeError("bad_parameters", "unknown promotion preset")
        self.prefix = params.get("prefix") or ""
        if not TABLE_PREFIX.match(self.prefix):
            raise NodeError("bad_parameters", "unexpected table prefix")
        self.incoming, self.aside = f"{self.target}_promote", f"{self.target}_prepromote"
        self.cache = params.get("cache") or {"hostnames": [urlsplit(self.target_url).hostname], "key_prefix": None}
        self.params = params

    @property
    def state_file(self) -> Path:
        return STATE_ROOT / f"{self.target}.json"

    def load_state(self) -> dict | None:
        try:
            fd = os.open(self.state_file, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with os.fdopen(fd) as handle:
            return json.load(handle)

    def save_state(self, state: dict) -> None:
        STATE_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(STATE_ROOT, 0o700)
        write_file(self.state_file, json.dumps(state, sort_keys=True), 0o600)

    def drop_state(self) -> None:
        try:
            self.state_file.unlink()
        except FileNotFoundError:
            pass

    def check_layouts(self) -> None:
        # Both environments' directories: the site could have planted links in either.
        reload = safe_fs.ensure_layout(self.target_root, self.target)
        reload = safe_fs.ensure_layout(self.source_root, self.source) or reload
        if reload:
            services.reload("nginx")


# --- the databases -------------------------------------------------------------------------------

def sql(statements: str) -> str:
    """Statements as the node's MariaDB administrator (root over the socket)."""
    return run(["mariadb", "--batch", "--skip-column-names"], input=statements, cwd="/").stdout


def _grant_name(database: str) -> str:
    return database.replace("_", "\\_")


def tables_of(database: str) -> dict[str, str]:
    """Table name -> type (BASE TABLE, VIEW...) in ``database``; odd names refused:
    table names are the site's to choose and end up in SQL as identifiers."""
    out = sql("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
              f"WHERE TABLE_SCHEMA = '{database}' ORDER BY TABLE_NAME;")
    found = {}
    for line in out.splitlines():
        table, kind = line.split("\t")
        if not TABLE_NAME.match(table):
            raise NodeError("remote_step_failed", f"a table of {database} has a name promotion does not handle: "
                                                  f"{table!r}")
        found[table] = kind
    return found


def base_tables(database: str, prefix: str) -> list[str]:
    return sorted(t for t, kind in tables_of(database).items() if kind == "BASE TABLE" and t.startswith(prefix))


def classify(source_tables: list[str], target_tables: list[str], preset: str, prefix: str) -> dict[str, list[str]]:
    """What a promotion does with every table of either side."""
    source, target = set(source_tables), set(target_tables)
    protected = set(promotion_presets.protected_tables(source | target, prefix, preset))
    return {
        "overwrite": sorted((source & target) - protected),
        "create": sorted((source - target) - protected),
        "protected": sorted(protected),
        "target_only": sorted((target - source) - protected),
    }


def _tail(data: bytes) -> str:
    return " | ".join(data.decode(errors="replace").strip().splitlines()[-3:])[-300:]


def _drained(stream) -> tuple[threading.Thread, list[bytes]]:
    """Read a child's stderr on the side (kept: its last 64 KiB), so a chatty child never blocks on a full pipe."""
    kept: list[bytes] = []

    def drain() -> None:
        while chunk := stream.read(65536):
            kept.append(chunk)
            while sum(map(len, kept)) > 65536 and len(kept) > 1:
                kept.pop(0)

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    return thread, kept


def copy_tables(promotion: Promotion, tables: list[str]) -> None:
    """The source's ``tables`` (one consistent snapshot) into the scratch database,
    loaded by the target's Linux user with the target's own database account in
    binary mode (no client commands): the rows are the site's data."""
    dump = subprocess.Popen(
        ["mariadb-dump", "--single-transaction", "--quick", "--skip-lock-tables", "--skip-triggers",
         "--no-tablespaces", "--default-character-set=utf8mb4", promotion.source, *tables],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/",
    )
    load = subprocess.Popen(
        ["runuser", "-u", promotion.target, "--", "mariadb", "--no-defaults", "--batch", "--binary-mode", "--sandbox",
         "--default-character-set=utf8mb4", f"--user={promotion.target}", "--host=localhost", promotion.incoming],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        env=dict(os.environ, MYSQL_PWD=promotion.password), cwd="/",
    )
    reader, errors = _drained(load.stderr)
    dump_reader, dump_errors = _drained(dump.stderr)
    try:
        while chunk := dump.stdout.read(CHUNK):
            load.stdin.write(chunk)
    except BrokenPipeError:
        pass  # the loader died; its exit status says why
    finally:
        dump.stdout.close()
        try:
            load.stdin.close()
        except BrokenPipeError:
            pass
    load.wait()
    dump.wait()
    reader.join(timeout=10)
    dump_reader.join(timeout=10)
    if dump.returncode != 0:
        raise NodeError("remote_step_failed", f"mariadb-dump of {promotion.source} exited {dump.returncode}: "
                        + _tail(b"".join(dump_errors)))
    if load.returncode != 0:
        raise NodeError("remote_step_failed", f"loading into {promotion.incoming} exited {load.returncode}: "
                        + _tail(b"".join(errors)))


def keep_target_options(promotion: Promotion) -> None:
    """The target's own rows of KEEP_OPTIONS replace the source's in the incoming options table."""
    options = f"{promotion.prefix}options"
    names = ", ".join(f"'{name}'" for name in KEEP_OPTIONS)
    sql(f"DELETE FROM `{promotion.incoming}`.`{options}` WHERE option_name IN ({names});\n"
        f"INSERT INTO `{promotion.incoming}`.`{options}` (option_name, option_value, autoload) "
        f"SELECT option_name, option_value, autoload FROM `{promotion.target}`.`{options}` "
        f"WHERE option_name IN ({names});\n")


def drop_scratch(promotion: Promotion) -> None:
    sql(f"DROP DATABASE IF EXISTS `{promotion.incoming}`;\nDROP DATABASE IF EXISTS `{promotion.aside}`;\n")
    run(["mariadb", "--batch"], input=f"REVOKE ALL PRIVILEGES ON `{_grant_name(promotion.incoming)}`.* "
                                      f"FROM '{promotion.target}'@'localhost';", check=False, cwd="/")


def rename_in_one_statement(moves: list[tuple[str, str, str]]) -> None:
    """(from_db, to_db, table) moves in one RENAME TABLE: all happen, or none."""
    if moves:
        sql("RENAME TABLE " + ",\n  ".join(f"`{a}`.`{t}` TO `{b}`.`{t}`" for a, b, t in moves) + ";\n")


# --- code ----------------------------------------------------------------------------------------

def check_source_release(promotion: Promotion) -> Path:
    live = safe_fs.current_release(promotion.source_root)
    if live is None:
        raise NodeError("remote_step_failed", f"{promotion.source_root} has no current release to promote")
    path = safe_fs.check_release(promotion.source_root, live)
    # The deploy rules: a link in the release may only point inside it (a link
    # leading out would be served, and hardlinked, as production's code).
    problems = release_archive.tree_problems(str(path), hard_links_ok=True, ignore=CODE_IGNORED)
    if problems:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise safe_fs.UnsafePath(f"the release {live} of {promotion.source} was refused: {shown}")
    return path


def tree_entries(top: Path) -> dict[str, tuple]:
    """Relative path -> (kind, identity or link target, size) for a release,
    walked without following any link."""
    found: dict[str, tuple] = {}
    pending = [""]
    while pending:
        relative = pending.pop()
        fd = safe_fs.open_directory(top / relative if relative else top)
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    name = f"{relative}/{entry.name}" if relative else entry.name
                    if name in CODE_IGNORED:
                        continue
                    info_ = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISDIR(info_.st_mode):
                        pending.append(name)
                    elif stat.S_ISLNK(info_.st_mode):
                        found[name] = ("link", os.readlink(entry.name, dir_fd=fd), 0)
                    elif stat.S_ISREG(info_.st_mode):
                        found[name] = ("file", (info_.st_dev, info_.st_ino), info_.st_size)
                    else:
                        found[name] = ("special", None, 0)
        finally:
            os.close(fd)
    return found


def file_digest(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def code_changes(source_release: Path, target_release: Path) -> dict:
    source, target = tree_entries(source_release), tree_entries(target_release)
    added = sorted(set(source) - set(target))
    removed = sorted(set(target) - set(source))
    changed = []
    for name in sorted(set(source) & set(target)):
        (kind_a, id_a, size_a), (kind_b, id_b, size_b) = source[name], target[name]
        if kind_a != kind_b or size_a != size_b:
            changed.append(name)
        elif kind_a == "link" and id_a != id_b:
            changed.append(name)
        elif kind_a == "file" and id_a != id_b and \
                file_digest(source_release / name) != file_digest(target_release / name):
            changed.append(name)
    return {"source_release": source_release.name, "target_release": target_release.name,
            "counts": {"added": len(added), "changed": len(changed), "removed": len(removed)},
            "added": added[:SHOWN], "changed": changed[:SHOWN], "removed": removed[:SHOWN]}


# --- comparing tables (plan) ---------------------------------------------------------------------

SERIALIZED_LENGTH = re.compile(rb's:\d+:"')


def _url_forms(url: str) -> list[bytes]:
    host = urlsplit(url).hostname or ""
    forms = [url.rstrip("/"), url.rstrip("/").replace("/", "\\\\/"), host]
    return [form.encode() for form in forms if form]


def table_fingerprint(database: str, table: str, url: str, prefix: str) -> tuple[int, str]:
    """Rows and a hash of ``table``'s structure and rows, ordered by its primary
    key and read as a stream (a large table never sits in memory). The
    environment's URL (plain, JSON-escaped) and host become one placeholder
    and serialized string lengths are left out, so a table of the source and
    the same table of the target compare equal when the URL rewrite is all
    that separates them. In the options table, the rows production keeps
    (KEEP_OPTIONS) are left out: a promotion never changes them."""
    forms = _url_forms(url)
    where = ""
    if table == f"{prefix}options":
        where = " WHERE option_name NOT IN (" + ", ".join(f"'{name}'" for name in KEEP_OPTIONS) + ")"
    create = sql(f"SHOW CREATE TABLE `{database}`.`{table}`;").split("\t", 1)[-1]
    create = re.sub(r" AUTO_INCREMENT=\d+", "", create)
    digest = hashlib.sha256(create.encode())
    keys = sql("SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = "
               f"'{database}' AND TABLE_NAME = '{table}' AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX;").split()
    columns = sql("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                  f"'{database}' AND TABLE_NAME = '{table}' ORDER BY ORDINAL_POSITION;").split()
    order = ", ".join(f"`{c}`" for c in (keys or columns) if TABLE_NAME.match(c)) or "1"
    reader = subprocess.Popen(["mariadb", "--batch", "--skip-column-names", "--quick", "-e",
                               f"SELECT * FROM `{database}`.`{table}`{where} ORDER BY {order};"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    errors_reader, errors = _drained(reader.stderr)
    rows = 0
    for line in reader.stdout:
        for form in forms:
            line = line.replace(form, b"\0URL\0")
        digest.update(SERIALIZED_LENGTH.sub(b's:"', line))
        rows += 1
    reader.stdout.close()
    status = reader.wait()
    errors_reader.join(timeout=10)
    if status != 0:
        raise NodeError("remote_step_failed", f"reading {database}.{table} failed: {_tail(b''.join(errors))}")
    return rows, digest.hexdigest()


def plan(promotion: Promotion) -> dict:
    # Read-only: the layouts are not corrected here; ``current`` is checked before either release is read.
    services.ensure_running("mariadb")
    step("compare the tables")
    source_tables = base_tables(promotion.source, promotion.prefix)
    target_tables = base_tables(promotion.target, promotion.prefix)
    classes = classify(source_tables, target_tables, promotion.preset, promotion.prefix)
    rows = []
    for action, names in classes.items():
        for table in names:
            entry = {"table": table, "action": action, "source_rows": None, "target_rows": None, "identical": None}
            source_print = target_print = None
            if table in source_tables:
                entry["source_rows"], source_print = table_fingerprint(promotion.source, table, promotion.source_url,
                                                                         promotion.prefix)
            if table in target_tables:
                entry["target_rows"], target_print = table_fingerprint(promotion.target, table, promotion.target_url,
                                                                         promotion.prefix)
            if source_print and target_print:
                entry["identical"] = source_print == target_print
            rows.append(entry)
    rows.sort(key=lambda entry: entry["table"])
    changes = sorted(e["table"] for e in rows if e["action"] == "create"
                     or (e["action"] == "overwrite" and not e["identical"]))
    info(f"{len(changes)} table(s) would change: {', '.join(changes) or 'none'}")
    step("compare the code")
    source_release = check_source_release(promotion)
    live = safe_fs.current_release(promotion.target_root)
    if live is None:
        raise NodeError("remote_step_failed", f"{promotion.target_root} has no current release")
    code = code_changes(source_release, safe_fs.check_release(promotion.target_root, live))
    info("code: {added} added, {changed} changed, {removed} removed".format(**code["counts"]))
    return {"preset": promotion.preset, "prefix": promotion.prefix, "tables": rows, "changed_tables": changes,
            "protected_tables": classes["protected"], "kept_target_only": classes["target_only"],
            "kept_options": list(KEEP_OPTIONS), "code": code}


# --- prepare / switch / finish / revert ------------------------------------------------------------

def prepare(promotion: Promotion) -> dict:
    state = promotion.load_state()
    if state and state.get("phase") not in ("preparing", "prepared"):
        raise NodeError("remote_step_failed", f"an earlier promotion into {promotion.target} stopped at "
                        f"{state.get('phase')!r}: finish or revert it first")
    release = promotion.params.get("release") or ""
    if not safe_fs.RELEASE_NAME.match(release):
        raise NodeError("bad_parameters", "unexpected release name")
    if promotion.password is None:
        raise NodeError("bad_parameters", "the target's database password is missing")
    env_setup.sql_quote(promotion.password)
    promotion.check_layouts()
    previous = safe_fs.current_release(promotion.target_root)
    if previous is None or previous == release:
        raise NodeError("bad_parameters", "the target needs a current release other than the new one")
    services.ensure_running("mariadb")
    if tables_of(promotion.aside):
        raise NodeError("remote_step_failed", f"an earlier promotion kept tables aside in {promotion.aside}: "
                                              "look at them, then drop them, before promoting again")
    if state and state["release"] not in (release, previous) and safe_fs.RELEASE_NAME.match(state["release"]):
        # An unfinished preparation of another attempt: its copy goes, nothing of it was live.
        release_files.remove(promotion.target_root / "releases" / state["release"])
    # Saved first, so that a revert after a failure here knows what to remove.
    promotion.save_state({"phase": "preparing", "release": release, "previous_release": previous,
                          "source": promotion.source, "overwrite": [], "create": []})

    step("decide what moves")
    classes = classify(base_tables(promotion.source, promotion.prefix), base_tables(promotion.target, promotion.prefix),
                       promotion.preset, promotion.prefix)
    moving = classes["overwrite"] + classes["create"]
    info(f"overwritten: {', '.join(classes['overwrite']) or 'none'}; created: {', '.join(classes['create']) or 'none'}")
    info(f"kept (protected by {promotion.preset}): {', '.join(classes['protected']) or 'none'}")
    info(f"kept (only in {promotion.target}): {', '.join(classes['target_only']) or 'none'}")
    if not moving:
        raise NodeError("remote_step_failed", f"{promotion.source} has no table to promote")

    timings = {}
    started = time.monotonic()
    step(f"copy the code of {promotion.source} as release {release}")
    check_source_release(promotion)
    copied = env_clone.copy_release(promotion.source_root, promotion.source, promotion.target_root, promotion.target,
                                    release)
    info(f"release {copied} of {promotion.source} copied to {release}")
    timings["release_s"], started = round(time.monotonic() - started, 3), time.monotonic()

    step(f"load the source's tables beside the live ones ({promotion.incoming})")
    sql(f"DROP DATABASE IF EXISTS `{promotion.incoming}`;\n"
        f"CREATE DATABASE `{promotion.incoming}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
        f"GRANT ALL PRIVILEGES ON `{_grant_name(promotion.incoming)}`.* TO '{promotion.target}'@'localhost';\n")
    copy_tables(promotion, moving)
    if f"{promotion.prefix}options" in classes["overwrite"]:
        keep_target_options(promotion)
        info(f"kept from {promotion.target}: {', '.join(KEEP_OPTIONS)}")

    timings["load_s"], started = round(time.monotonic() - started, 3), time.monotonic()
    step(f"rewrite {promotion.source_url} to {promotion.target_url} in the incoming tables")
    if not env_clone.SEARCH_REPLACE.exists():
        raise NodeError("remote_step_failed", "the search-replace program is missing on this node")
    rewrite = env_clone.rewrite_urls(promotion.target, promotion.password, promotion.source_url, promotion.target_url,
                                     database=promotion.incoming, prefix=promotion.prefix)
    timings["rewrite_s"] = round(time.monotonic() - started, 3)
    missing = set(moving) - set(tables_of(promotion.incoming))
    if missing:
        raise NodeError("remote_step_failed", f"tables missing after the load: {', '.join(sorted(missing))}")
    promotion.save_state({"phase": "prepared", "release": release, "previous_release": previous,
                          "source": promotion.source, "overwrite": classes["overwrite"], "create": classes["create"]})
    return {"release": release, "previous_release": previous, "copied_release": copied, "tables": classes,
            "url_rewrite": rewrite, "timings": timings}


def _renamed(promotion: Promotion, state: dict) -> bool:
    """Whether the switch's RENAME happened (it is all or nothing): the incoming tables left the scratch database."""
    incoming = tables_of(promotion.incoming)
    moving = state["overwrite"] + state["create"]
    if all(table in incoming for table in moving):
        return False
    if not any(table in incoming for table in moving):
        return True
    raise NodeError("remote_step_failed", f"{promotion.incoming} holds part of the promotion's tables; "
                                          "an operator must look")


def switch(promotion: Promotion) -> dict:
    state = promotion.load_state()
    if not state or state.get("phase") not in ("prepared", "switching", "switched"):
        raise NodeError("remote_step_failed", "no prepared promotion to switch to")
    if state["source"] != promotion.source:
        raise NodeError("bad_parameters", "the prepared promotion came from another environment")
    promotion.check_layouts()
    services.ensure_running("mariadb")
    release = state["release"]
    safe_fs.check_release(promotion.target_root, release)
    if state["phase"] == "prepared":
        state["phase"] = "switching"
        promotion.save_state(state)
    if not _renamed(promotion, state):
        step("swap the tables in (one RENAME TABLE; the replaced ones kept aside)")
        sql(f"CREATE DATABASE IF NOT EXISTS `{promotion.aside}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n")
        live = tables_of(promotion.target)
        moves = [(promotion.target, promotion.aside, t) for t in state["overwrite"] if t in live]
        moves += [(promotion.incoming, promotion.target, t) for t in state["overwrite"] + state["create"]]
        # A table only the source had that production has meanwhile: kept aside too, never dropped.
        moves[:0] = [(promotion.target, promotion.aside, t) for t in state["create"] if t in live]
        state["aside"] = sorted(t for a, b, t in moves if b == promotion.aside)
        promotion.save_state(state)
        rename_in_one_statement(moves)
    step(f"switch to release {release}")
    if safe_fs.current_release(promotion.target_root) != release:
        state["switched_at"] = time.time()
        link_current(promotion.target_root, release)
    # New real paths, new opcache keys: no PHP-FPM reload (php_opcache.py says why).
    php_opcache.forget_stale_code(promotion.target, promotion.target_root, release)
    state["phase"] = "switched"
    state.setdefault("switched_at", time.time())
    promotion.save_state(state)
    step("purge the page cache and the object cache")
    site_cache.purge_after_switch(promotion.cache["hostnames"], promotion.cache["key_prefix"])
    return {"release": release, "previous_release": state["previous_release"], "switched_at": state["switched_at"],
            "tables": state["overwrite"] + state["create"]}


def finish(promotion: Promotion) -> dict:
    state = promotion.load_state()
    if state is None:
        info("no promotion to finish (finished already)")
        return {"finished": False}
    if state.get("phase") not in ("switched", "finishing"):
        raise NodeError("remote_step_failed", f"the promotion stopped at {state.get('phase')!r}; it cannot finish")
    if state["phase"] == "switched":
        # Judged healthy: from here on the way back is gone, so a later revert finishes instead.
        state["phase"] = "finishing"
        promotion.save_state(state)
    services.ensure_running("mariadb")
    step("drop the tables kept aside and the scratch databases")
    drop_scratch(promotion)
    step("prune old releases")
    removed = env_deploy.prune(promotion.target_root, int(promotion.params.get("keep", 5)),
                               {state["release"], state["previous_release"]})
    if removed:
        info(f"removed {', '.join(removed)}")
    site_cache.purge_after_switch(promotion.cache["hostnames"], promotion.cache["key_prefix"])
    promotion.drop_state()
    return {"finished": True, "release": state["release"], "pruned": removed}


def revert(promotion: Promotion) -> dict:
    """Undo a promotion that did not finish, judged from the state and the databases."""
    state = promotion.load_state()
    if state is None:
        info("no promotion to revert")
        return {"reverted": []}
    if state.get("phase") == "finishing":
        # It was judged healthy and its finish began (the tables kept aside may be gone): finish it.
        info("the promotion was judged healthy and was being finished: finishing it instead")
        finished = finish(promotion)
        return {"reverted": [], "finished": True, "release": state["release"], "pruned": finished.get("pruned", [])}
    promotion.check_layouts()
    services.ensure_running("mariadb")
    reverted = []
    if state.get("phase") in ("switching", "switched") and _renamed(promotion, state):
        step("swap the previous tables back (one RENAME TABLE)")
        moves = [(promotion.target, promotion.incoming, t) for t in state["overwrite"] + state["create"]]
        moves += [(promotion.aside, promotion.target, t) for t in state.get("aside", [])]
        rename_in_one_statement(moves)
        # Recorded at once: a revert resumed after this point must not judge the tables again.
        state["phase"] = "reverting"
        promotion.save_state(state)
        reverted.append("tables")
    previous = state["previous_release"]
    if safe_fs.current_release(promotion.target_root) != previous:
        safe_fs.check_release(promotion.target_root, previous)
        step(f"switch back to release {previous}")
        link_current(promotion.target_root, previous)
        reverted.append("release")
    php_opcache.forget_stale_code(promotion.target, promotion.target_root, previous)
    site_cache.purge_after_switch(promotion.cache["hostnames"], promotion.cache["key_prefix"])
    if tables_of(promotion.aside):
        raise NodeError("remote_step_failed", f"{promotion.aside} still holds tables after the swap back; "
                                              "an operator must look")
    step("remove the promoted copies")
    drop_scratch(promotion)
    release_files.remove(promotion.target_root / "releases" / f".{state['release']}.partial")
    if state["release"] != previous:
        release_files.remove(promotion.target_root / "releases" / state["release"])
    promotion.drop_state()
    return {"reverted": reverted, "release": previous}


def abandon(promotion: Promotion) -> dict:
    """After the swap back failed and production was restored from its
    pre-promotion backup: the promotion is forgotten (its state file, its
    release when not current), so that no later revert or finish acts on the
    restored site. Neither the live database nor ``current`` is touched. The
    tables it moved stay for an operator (``<target>_prepromote``: production's
    tables as they were at the switch, ``<target>_promote``)."""
    state = promotion.load_state()
    if state is None:
        info("no promotion to abandon")
        return {"abandoned": False, "kept": []}
    if state.get("phase") == "finishing":
        raise NodeError("remote_step_failed", "the promotion was judged healthy and is being finished; finish it")
    release = state.get("release") or ""
    if safe_fs.RELEASE_NAME.match(release) and safe_fs.current_release(promotion.target_root) != release:
        step(f"remove the promotion's release {release}")
        release_files.remove(promotion.target_root / "releases" / f".{release}.partial")
        release_files.remove(promotion.target_root / "releases" / release)
    services.ensure_running("mariadb")
    kept = [database for database in (promotion.aside, promotion.incoming) if tables_of(database)]
    if kept:
        info(f"kept for an operator: {', '.join(kept)}")
    promotion.drop_state()
    return {"abandoned": True, "kept": kept}


def prepare_switch(promotion: Promotion) -> dict:
    """``prepare`` and at once ``switch``: the result of each under its name."""
    prepared = prepare(promotion)
    return {"prepared": prepared, "switched": switch(promotion)}


PHASES = {"plan": plan, "prepare": prepare, "switch": switch, "prepare_switch": prepare_switch, "finish": finish,
          "revert": revert, "abandon": abandon}


def promote(params: dict) -> dict:
    phase = PHASES.get(params.get("phase"))
    if phase is None:
        raise NodeError("bad_parameters", "unknown promotion phase")
    return phase(Promotion(params))


if __name__ == "__main__":
    main(promote)
