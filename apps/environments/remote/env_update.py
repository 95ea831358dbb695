#!/usr/bin/env python3
"""Updates of an environment's WordPress core, plugins and themes, done by
WordPress's own upgrader code in a new release (see docs/updates.md).

Parameters (JSON on stdin): system_name, root, url, api (the update API's
base URL), action, and per action:

- ``check``: what the update API offers (installed -> available per
  component) and the latest post's URL. Read-only as far as code goes.
- ``apply``: scope (core, plugins, themes, all), release (the new release's
  name), keep, max_package_bytes. Steps: ask the update check again; download
  each package as the node's unprivileged fetch account and check it by the
  deploy archive rules (release_archive.py, nothing of a refused package is
  used); build ``releases/<release>`` as hardlinks of the current release and
  lend its directories (never its files) to the environment's user; run
  WordPress's upgraders there through the WordPress helper, as that user
  (files are replaced, never written into: the live release's shared files
  cannot change); take the tree back and seal it (root's, read-only), refuse
  any link that leads out of it; check that WordPress loads from it and
  reports the new versions; switch ``current`` atomically, tell the opcache (php_opcache),
  purge the page cache and the object cache; after a core update, run WordPress's database
  upgrade with the new code. Nothing is switched if any step before fails.
- ``restore_db``: load a database dump from the pre-update backup (restic
  snapshot ``snapshot_id``, checked against ``sha256`` before anything is
  loaded) into a fresh database by the environment's own database account
  (``db_password``), never by root: the dump's texts are the site's; then
  swap its tables for the live ones in one RENAME TABLE (env_restore.py's
  swap; the dump's views created again in live by the site's account), so
  tables and views made after the backup go and a dump that does not load
  changes nothing; ``repository`` as for backup_create.py. The rollback of
  an update that changed the database.
- ``db_fingerprint``: what an update's own code may change in the database
  (tables, their columns and indexes, options named like a version); the
  panel takes one before ``apply`` and compares it with one taken when the
  update fails or is rolled back (docs/updates.md).
"""

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import backup_create
import env_restore
import env_setup
import git_user
import release_archive
import release_files
import php_opcache
import safe_fs
import services
import site_cache
import wp_helper_client
from env_clone import TABLE_PREFIX
from env_setup import link_current
from nodelib import NodeError, clean_text, info, main, run_bounded, step

NAME = re.compile(r"^pl[0-9a-f]{12}$")
RELEASE = re.compile(r"^[0-9]{8}T[0-9]{6}([0-9]{6})?Z$")
SNAPSHOT = re.compile(r"^[0-9a-f]{64}$")
SCOPES = {"core": ("core",), "plugins": ("plugins",), "themes": ("themes",), "all": ("core", "plugins", "themes")}
# What a site's WordPress may name: checked before anything uses it.
PLUGIN_FILE = re.compile(r"^[A-Za-z0-9._-]{1,100}(/[A-Za-z0-9._-]{1,100})?\.php$")
STYLESHEET = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,39}$")
PACKAGE_URL = re.compile(r"^https?://[^\s\\]{1,2000}$")
PACKAGES_DIR = Path("/var/lib/pressluft/update-packages")
DUMPS_DIR = Path("/var/lib/pressluft/update-dumps")
DOWNLOAD_TIMEOUT = 600
FINGERPRINT_TIMEOUT = 120
NAME_SHOWN = 64 * 2 * 6
OPTION_SHOWN = 191 * 2 * 6
# The statements are fixed text (the options table's prefix is the one every
# environment's wp-config.php sets): nothing a site wrote is part of them.
SCHEMA_QUERY = ("SELECT TABLE_NAME, 'column', COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                "ORDER BY TABLE_NAME, ORDINAL_POSITION; "
                "SELECT TABLE_NAME, 'index', INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE "
                "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX")
VERSION_OPTIONS_QUERY = (f"SELECT option_name, LEFT(option_value, 64) FROM `{TABLE_PREFIX}options` "
                         "WHERE option_name NOT LIKE '\\_%' "
                         "AND (option_name LIKE '%\\_version' OR option_name LIKE '%db\\_version%') "
                         "ORDER BY option_name LIMIT 500")
# Run as the fetch account: an http(s) download of at most LIMIT bytes into a new file.
DOWNLOADER = r"""
import sys, urllib.request
url, path, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
if not url.startswith(("http://", "https://")):
    sys.exit("not an http(s) URL")
request = urllib.request.Request(url, headers={"User-Agent": "Pressluft-Updater/1"})
with urllib.request.urlopen(request, timeout=120) as response, open(path, "xb") as out:
    if not response.geturl().startswith(("http://", "https://")):
        sys.exit("redirected away from http(s)")
    size = 0
    while chunk := response.read(1 << 20):
        size += len(chunk)
        if size > limit:
            sys.exit(f"larger than {limit} bytes")
        out.write(chunk)
"""


def helper(params: dict, command: str, *, release: Path | None = None, timeout: float = 300, **extra) -> dict:
    request = {"command": command, "root": params["root"], "url": params["url"], **extra}
    if release is not None:
        request["release"] = str(release)
    return wp_helper_client.call(params["system_name"], request, timeout=timeout)


def _text(value, pattern: re.Pattern) -> str | None:
    return value if isinstance(value, str) and pattern.match(value) else None


def _clean_name(value) -> str:
    return clean_text(value if isinstance(value, str) else "", 120)


def offered(answer: dict) -> dict:
    """The helper's answer (the site's WordPress wrote it: every field checked),
    as the panel shows it: {"core": {...}, "plugins": [...], "themes": [...], "latest_post_url"}."""
    result: dict = {"core": None, "plugins": [], "themes": [], "latest_post_url": None}
    core = answer.get("core") if isinstance(answer.get("core"), dict) else {}
    installed = _text(core.get("installed"), VERSION)
    if installed:
        result["core"] = {"installed": installed, "available": _text(core.get("available"), VERSION),
                          "package": _text(core.get("package"), PACKAGE_URL),
                          "php_version": _text(core.get("php_version"), VERSION) or "",
                          "mysql_version": _text(core.get("mysql_version"), VERSION) or ""}
    for kind, key, pattern in (("plugins", "file", PLUGIN_FILE), ("themes", "stylesheet", STYLESHEET)):
        for row in answer.get(kind) if isinstance(answer.get(kind), list) else []:
            if not isinstance(row, dict) or not _text(row.get(key), pattern) or ".." in row[key]:
                continue
            result[kind].append({key: row[key], "name": _clean_name(row.get("name")) or row[key],
                                 "installed": _text(row.get("installed"), VERSION) or "",
                                 "available": _text(row.get("available"), VERSION),
                                 "package": _text(row.get("package"), PACKAGE_URL),
                                 "active": row.get("active") is True})
    latest = answer.get("latest_post_url")
    if isinstance(latest, str) and PACKAGE_URL.match(latest):
        result["latest_post_url"] = latest
    return result


def pending(found: dict, scope: str) -> list[dict]:
    """The components the scope updates: each with an offer newer than what is installed."""
    chosen = []
    core = found.get("core")
    if "core" in SCOPES[scope] and core and core["available"] and core["package"]:
        chosen.append({"type": "core", "key": "core", "name": "WordPress", "from": core["installed"],
                       "to": core["available"], "package": core["package"],
                       "php_version": core["php_version"], "mysql_version": core["mysql_version"]})
    for kind, key, kind_name in (("plugins", "file", "plugin"), ("themes", "stylesheet", "theme")):
        if kind not in SCOPES[scope]:
            continue
        for row in found[kind]:
            if row["available"] and row["package"] and row["available"] != row["installed"]:
                chosen.append({"type": kind_name, "key": row[key], "name": row["name"], "from": row["installed"],
                               "to": row["available"], "package": row["package"]})
    return chosen


def check(params: dict) -> dict:
    safe_fs.current_release(Path(params["root"]))  # never a WordPress outside the releases
    return offered(helper(params, "update-check", api=params["api"], timeout=120))


def download(component: dict, into: Path, limit: int, account_dir: Path, account) -> Path:
    """The package, fetched as the fetch account into its own scratch
    directory, then copied by root (no link followed) into ``into``."""
    fetched = account_dir / "package.zip"
    try:
        result = run_bounded(["python3", "-I", "-S", "-c", DOWNLOADER, component["package"], str(fetched), str(limit)],
                             timeout=DOWNLOAD_TIMEOUT, cwd=str(account_dir), user=account.pw_uid,
                             group=account.pw_gid, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    except subprocess.TimeoutExpired:
        raise NodeError("update_package_failed", f"downloading {component['name']} {component['to']} took longer "
                                                 f"than {DOWNLOAD_TIMEOUT} s", retryable=True) from None
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-2:])
        raise NodeError("update_package_failed", f"downloading {component['name']} {component['to']} failed: "
                                                 f"{clean_text(tail, 300)}", retryable=True)
    # Not a bare number: WordPress names its working directory after the file, and skips "0" as empty.
    target = into / f"package-{len(list(into.iterdir()))}.zip"
    fd = os.open(fetched, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_uid != account.pw_uid or found.st_nlink != 1:
            raise NodeError("update_package_invalid", f"the package of {component['name']} is not a plain file")
        with os.fdopen(os.dup(fd), "rb") as source, open(target, "xb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
    finally:
        os.close(fd)
        os.unlink(fetched)
    return target


def check_package(component: dict, path: Path, limit: int) -> None:
    try:
        inspection = release_archive.inspect(str(path), max_bytes=limit, require_layout=False)
    except release_archive.ArchiveRejected as exc:
        raise NodeError("update_package_invalid", f"the package of {component['name']} {component['to']} was "
                                                  f"refused: {exc}") from None
    if inspection.format != "zip":
        raise NodeError("update_package_invalid", f"the package of {component['name']} is not a zip archive")
    info(f"{component['type']} {component['name']}: package checked ({len(inspection.members)} entries, "
         f"{inspection.total_bytes} bytes)")


def lend_directories(top: Path, uid: int, gid: int) -> None:
    """Every directory of a release under construction to the site's user
    (root's own fresh tree: nothing in it is the site's yet), files left root's."""
    pending_dirs = [top]
    while pending_dirs:
        path = pending_dirs.pop()
        fd = safe_fs.open_directory(path)
        try:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, 0o755)
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending_dirs.append(path / entry.name)
        finally:
            os.close(fd)


def _files(top: Path):
    """(relative name, lstat) of every regular file under ``top``, no link followed."""
    pending_dirs = [top]
    while pending_dirs:
        path = pending_dirs.pop()
        fd = safe_fs.open_directory(path)
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    found = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(found.st_mode):
                        pending_dirs.append(path / entry.name)
                    elif stat.S_ISREG(found.st_mode):
                        yield (path / entry.name).relative_to(top).as_posix(), found
        finally:
            os.close(fd)


def foreign_hard_links(staging: Path, current: Path) -> list[str]:
    """Files of the new release that share their inode with something that is
    not a file of the current release: only the site's processes, while the
    directories were lent, can have put such a hard link there (WordPress's
    upgrader writes new files)."""
    shared = {(found.st_dev, found.st_ino) for _, found in _files(current) if found.st_nlink > 1}
    return [f"{name!r}: a hard link to a file outside the release" for name, found in _files(staging)
            if found.st_nlink > 1 and (found.st_dev, found.st_ino) not in shared]


def build(params: dict, root: Path, release: str, previous: str, components: list[dict], packages: dict,
          account: safe_fs.Account) -> Path:
    final = root / "releases" / release
    staging = root / "releases" / f".{release}.partial"
    release_files.remove(staging)
    # Left by an earlier run that stopped before switching (never live: apply() returned early otherwise).
    release_files.remove(final)
    current = safe_fs.check_release(root, previous)
    release_files.seal(current, (account.uid, account.gid))
    release_files.link_tree(current, staging)
    release_files.remove(staging / ".pressluft-complete")
    lend_directories(staging, account.uid, account.gid)
    try:
        step("run WordPress's upgrader in the new release (as the site's user)")
        answer = helper(params, "update-apply", release=staging, api=params["api"], packages=packages, timeout=1200)
        results = answer.get("results") if isinstance(answer.get("results"), dict) else {}
        failed = []
        for component in components:
            key = "core" if component["type"] == "core" else f"{component['type']}:{component['key']}"
            outcome = results.get(key) if isinstance(results.get(key), dict) else {}
            if outcome.get("ok") is True:
                info(f"{component['type']} {component['name']}: {component['from']} -> {component['to']} installed")
            else:
                failed.append(f"{component['type']} {component['name']}: "
                              f"{wp_helper_client.site_text(outcome.get('error'))}")
        if failed:
            raise NodeError("update_failed", "WordPress's upgrader failed: " + "; ".join(failed))
        step("seal the new release (root's, read-only) and check its links")
        # Back to root directory by directory before anything is read (release_files.seal).
        release_files.seal(staging)
        for leftover in (".maintenance", "wp-content/upgrade"):
            release_files.remove(staging / leftover)
        problems = release_archive.tree_problems(str(staging), hard_links_ok=True,
                                                 ignore=frozenset(release_files.SHARED_LINKS))
        problems += foreign_hard_links(staging, current)
        if problems:
            shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
            raise NodeError("update_package_invalid", f"the updated release was refused: {shown}")
        release_files.attach_pressluft_parts(staging)
        release_files.replace_file(staging / ".pressluft-complete", (release + "\n").encode())
        release_files.seal(staging, (account.uid, account.gid))
        staging.rename(final)
    except BaseException:
        release_files.remove(staging)
        raise
    return final


def verify(params: dict, final: Path, components: list[dict]) -> None:
    """WordPress loads from the new release and reports the new versions."""
    answer = offered(helper(params, "components", release=final, timeout=120))
    installed = {"core:core": (answer["core"] or {}).get("installed")}
    installed.update({f"plugin:{row['file']}": row["installed"] for row in answer["plugins"]})
    installed.update({f"theme:{row['stylesheet']}": row["installed"] for row in answer["themes"]})
    wrong = [f"{c['type']} {c['name']} reports {installed.get(c['type'] + ':' + c['key']) or 'nothing'}, "
             f"not {c['to']}" for c in components if installed.get(f"{c['type']}:{c['key']}") != c["to"]]
    if wrong:
        raise NodeError("update_failed", "the new release does not hold the updates: " + "; ".join(wrong))


def prune(root: Path, keep: int, protect: set[str]) -> list[str]:
    found = [p for p in (root / "releases").iterdir() if RELEASE.match(p.name)]
    releases = [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime)]
    removed = []
    for old in releases[:-keep] if keep > 0 else []:
        if old not in protect:
            shutil.rmtree(root / "releases" / old)
            removed.append(old)
    return removed


def apply(params: dict) -> dict:
    name, release, scope = params["system_name"], params["release"], params["scope"]
    if not RELEASE.match(release) or scope not in SCOPES:
        raise NodeError("bad_parameters", "unexpected release name or scope")
    root = Path(params["root"])
    if safe_fs.ensure_layout(root, name):
        services.reload("nginx")
    previous = safe_fs.current_release(root)
    if previous is None:
        raise NodeError("remote_step_failed", "the environment has no current release to update")
    if previous == release:
        info(f"release {release} is live already (an earlier run switched to it)")
        return {"release": release, "previous": None, "updated": [], "already_live": True, "switched_at": None}
    account = safe_fs.Account.of(name)

    step("ask WordPress which updates are offered")
    components = pending(check(params), scope)
    for component in components:
        info(f"{component['type']} {component['name']}: {component['from']} -> {component['to']}")
    if not components:
        return {"release": None, "previous": previous, "updated": [], "switched_at": None}

    limit = int(params["max_package_bytes"])
    PACKAGES_DIR.mkdir(mode=0o711, parents=True, exist_ok=True)
    PACKAGES_DIR.chmod(0o711)  # each update's own directory is the only way in (random name, its site's group)
    packages_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=PACKAGES_DIR))
    fetch_account = git_user.ensure()
    fetch_dir = Path(tempfile.mkdtemp(prefix="pressluft-update-"))
    try:
        os.chown(fetch_dir, fetch_account.pw_uid, fetch_account.pw_gid)
        step("download the packages (as the unprivileged fetch account) and check them")
        packages: dict = {}
        for component in components:
            path = download(component, packages_dir, limit, fetch_dir, fetch_account)
            check_package(component, path, limit)
            os.chown(path, 0, account.gid)
            os.chmod(path, 0o640)
            entry = {"package": str(path), "version": component["to"]}
            if component["type"] == "core":
                packages["core"] = dict(entry, php_version=component["php_version"],
                                        mysql_version=component["mysql_version"])
            else:
                packages.setdefault(f"{component['type']}s", {})[component["key"]] = entry
        # The site's user reads the checked packages; nobody else's business.
        os.chown(packages_dir, 0, account.gid)
        os.chmod(packages_dir, 0o750)
        step(f"build release {release} from {previous}")
        final = build(params, root, release, previous, components, packages, account)
    finally:
        shutil.rmtree(fetch_dir, ignore_errors=True)
        shutil.rmtree(packages_dir, ignore_errors=True)

    step("check that WordPress loads from the new release")
    try:
        verify(params, final, components)
    except NodeError:
        release_files.remove(final)  # never live
        raise

    step("switch to the new release")
    switched_at = time.time()
    link_current(root, release)
    # New real paths, new opcache keys: no PHP-FPM reload (php_opcache.py says why).
    php_opcache.forget_stale_code(name, root, release)

    database = None
    if any(component["type"] == "core" for component in components):
        step("upgrade the database (WordPress's upgrade with the new core)")
        answer = helper(params, "db-upgrade", timeout=600)
        database = {"before": answer.get("before"), "after": answer.get("after"), "changed": answer.get("changed") is True}
        info(f"database version {database['before']} -> {database['after']}")

    step("purge the page cache and the object cache")
    cache = params.get("cache") or {"hostnames": [urlsplit(params["url"]).hostname], "key_prefix": None}
    site_cache.purge_after_switch(cache["hostnames"], cache["key_prefix"])
    removed = prune(root, int(params.get("keep", 5)), {release, previous})
    return {"release": release, "previous": previous, "switched_at": switched_at, "pruned": removed,
            "database": database,
            "updated": [{key: c[key] for key in ("type", "key", "name", "from", "to")} for c in components]}


def _rows(name: str, query: str) -> list[list[str]] | None:
    done = subprocess.run(["mariadb", "--batch", "--skip-column-names", "-e", query, name], capture_output=True,
                          timeout=FINGERPRINT_TIMEOUT)
    if done.returncode != 0:
        return None
    return [line.split("\t") for line in done.stdout.decode("utf-8", "replace").splitlines()]


def database_fingerprint(name: str) -> dict:
    """Each table's structure as a short digest, and the options named like a
    version (``*_version``, ``*db_version*``, not transients): what a plugin's
    or theme's upgrade routine changes. Rows visitors write (comments,
    orders, transients) are not part of it, so they do not count as the
    update's doing."""
    services.ensure_running("mariadb")
    schema = _rows(name, SCHEMA_QUERY)
    if schema is None:
        raise NodeError("remote_step_failed", "could not read the database's tables")
    digests: dict[str, "hashlib._Hash"] = {}
    for row in schema:
        digests.setdefault(row[0], hashlib.sha256()).update("\t".join(row[1:]).encode() + b"\n")
    # Keys never cut: two names alike in their first characters stay two keys
    # (a table name is at most 64 characters, an option name 191; each shown
    # escaped, at most a few characters each, and escaping keeps names apart).
    tables = {clean_text(table, NAME_SHOWN): digest.hexdigest()[:16] for table, digest in digests.items()}
    versions = {clean_text(row[0], OPTION_SHOWN): clean_text(row[1] if len(row) > 1 else "", 64)
                for row in _rows(name, VERSION_OPTIONS_QUERY) or []}
    return {"tables": tables, "versions": versions}


def restore_db(params: dict) -> dict:
    """The pre-update dump back into the environment's database, verified first."""
    name = params["system_name"]
    snapshot, expected = params["snapshot_id"], params["sha256"]
    if not SNAPSHOT.match(snapshot) or not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise NodeError("bad_parameters", "unexpected snapshot id or checksum")
    password = params.get("db_password") or ""
    env_setup.sql_quote(password)  # the account's password has the form the panel gives it
    repository = params["repository"]
    DUMPS_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    step("fetch the pre-update database dump and verify its checksum")
    with tempfile.NamedTemporaryFile(dir=DUMPS_DIR, prefix=f"{name}-") as dump:
        command = [backup_create.RESTIC, *backup_create.restic_options(repository), *backup_create.READ_ONLY, "dump",
                   snapshot, "database.sql"]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   env=backup_create.restic_env(repository), cwd="/")
        digest = hashlib.sha256()
        while chunk := process.stdout.read(1 << 20):
            digest.update(chunk)
            dump.write(chunk)
        error = process.stderr.read()
        process.wait()
        if process.returncode != 0:
            raise NodeError("backup_storage_failed", f"restic could not read the dump: "
                                                     f"{backup_create._tail(error)}", retryable=True)
        if digest.hexdigest() != expected:
            raise NodeError("backup_checksum_mismatch", "the pre-update dump does not match its recorded checksum; "
                                                        "the database was not touched")
        dump.flush()
        services.ensure_running("mariadb")
        incoming, aside = env_restore.database_names(name)
        step(f"load the pre-update database into a fresh database ({incoming}) as {name}")
        # The dump is the site's database: its trigger, view, routine and event
        # texts are the site's, and the mariadb client reads a dump as a script.
        # Loaded by the site's account, in binary mode with no client commands,
        # into a database beside the live one: nothing in it acts with more
        # than the site's rights, and a dump that does not load changes nothing.
        env_restore.prepare_database(name, password, incoming)
        try:
            _, _, failure = env_restore.load_database(Path(dump.name), name, password, incoming, name)
            if failure is not None:
                raise failure
        except NodeError:
            env_restore.drop_scratch_databases(name)
            raise
        size = os.path.getsize(dump.name)
    info(f"{size} bytes of SQL loaded")
    # The live tables swapped for the dump's in one RENAME TABLE: afterwards the
    # database holds exactly the dump's tables (triggers carried with them, the
    # dump's views created again by the site's account);
    # those the update's code made after the backup went aside with the rest.
    step("swap the pre-update tables in")
    previous = {table for table, _ in env_restore.tables_of(name)}
    env_restore.swap_tables(name, incoming, aside, password)
    dropped = sorted(previous - {table for table, _ in env_restore.tables_of(name)})
    env_restore.drop_scratch_databases(name)
    if dropped:
        info("tables and views made after the backup dropped: " + ", ".join(clean_text(table, 64) for table in dropped))
    # The database changed underneath WordPress: its object cache and pages go too.
    cache = params.get("cache")
    if cache:
        site_cache.purge_after_switch(cache["hostnames"], cache["key_prefix"])
    return {"restored": True, "bytes": size}


def update(params: dict) -> dict:
    if not NAME.match(params.get("system_name", "")):
        raise NodeError("bad_parameters", "unexpected environment system name")
    action = params.get("action")
    if action == "check":
        return check(params)
    if action == "apply":
        return apply(params)
    if action == "restore_db":
        return restore_db(params)
    if action == "db_fingerprint":
        return database_fingerprint(params["system_name"])
    raise NodeError("bad_parameters", f"unknown action {action!r}")


if __name__ == "__main__":
    main(update)
