#!/usr/bin/env python3
"""Create (or complete) an environment on this node as a full copy of another
one on the same node: code, uploads and database, then every URL of the source
rewritten to the new environment's URL.

Idempotent: the user, directories, database, configs are ensured as in
env_setup.py; the copy steps run until a marker file says the copy finished,
so a re-run after a crash at any line copies again from the source (the site's
job lock keeps the source unchanged meanwhile) and never mixes two copies.

Parameters (JSON on stdin), all produced by the panel:
  system_name, root, url, db_password, files, paths, redis   the new environment (as env_setup.py)
  release       name of the new environment's release directory
  source        {"system_name", "root", "url"} of the environment copied
  wp_options    {name: value} set through WordPress after the copy (e.g. blog_public)
"""

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import env_setup
import redis_acl
import release_files
import safe_fs
import services
import site_cache
import wp_helper_client
from nodelib import LIB_DIR, NodeError, info, install_config, main, run, step, write_file

DONE_MARKER = ".pressluft-clone-complete"
SEARCH_REPLACE = LIB_DIR / "pressluft-search-replace.php"
TABLE_PREFIX = "wp_"  # what wp-config.php.tmpl sets for every environment


def check_name(name: str) -> str:
    if not env_setup.NAME.match(name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    return name


def copy_release(source_root: Path, source_name: str, root: Path, name: str, release: str) -> str:
    """The source's current release as a new release of the clone, its files
    hardlinked, not copied: release files are root's and writable by neither
    environment's user (release_files.seal), so sharing an inode is safe.
    """
    live = safe_fs.current_release(source_root)
    if live is None:
        raise NodeError("remote_step_failed", f"the source environment has no current release at {source_root}")
    origin = safe_fs.check_release(source_root, live)
    releases = root / "releases"
    final = releases / release
    partial = releases / f".{release}.partial"
    release_files.remove(partial)
    # A copy from an earlier, interrupted run: copy again, the source may differ.
    release_files.remove(final)
    # A release of the source built before releases were sealed must not be
    # shared as it is: its files are writable by the source's user.
    source = safe_fs.Account.of(source_name)
    release_files.seal(origin, (source.uid, source.gid))
    release_files.link_tree(origin, partial)
    # Links recreated so they can only ever point at the clone's own shared/; the
    # plugins current even if the source's release predates them.
    release_files.attach_pressluft_parts(partial)
    account = safe_fs.Account.of(name)
    release_files.seal(partial, (account.uid, account.gid))
    partial.rename(final)
    return origin.name


def copy_uploads(source_root: Path, source_name: str, root: Path, name: str) -> None:
    """The source's uploads into the clone's, with neither tree touched by root:
    the source's user packs what it can read, the clone's user unpacks into
    what it owns, so links in the source stay links and reach nothing."""
    origin = source_root / "shared" / "uploads"
    target = root / "shared" / "uploads"
    # A re-run leaves exactly the source's files, nothing from an older attempt.
    run(["runuser", "-u", name, "--", "find", str(target), "-mindepth", "1", "-delete"], cwd="/")
    pack = subprocess.Popen(["runuser", "-u", source_name, "--", "tar", "-C", str(origin), "-cf", "-", "."],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/")
    unpack = subprocess.Popen(["runuser", "-u", name, "--", "tar", "-C", str(target), "-xf", "-", "--no-same-owner"],
                              stdin=pack.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/")
    pack.stdout.close()
    _, unpack_err = unpack.communicate()
    pack_err = pack.stderr.read()
    pack.wait()
    # GNU tar exits 1 when a file changed while it was read: the site is live, that is no failure.
    if pack.returncode not in (0, 1):
        raise NodeError("remote_step_failed", f"packing the uploads of {source_name} exited {pack.returncode}: "
                        + _tail(pack_err))
    if unpack.returncode != 0:
        raise NodeError("remote_step_failed", f"unpacking the uploads as {name} exited {unpack.returncode}: "
                        + _tail(unpack_err))


def _tail(stderr: bytes) -> str:
    return " | ".join(stderr.decode(errors="replace").strip().splitlines()[-3:])[-300:]


def copy_database(source_db: str, target_db: str, target_password: str, tables: list[str] | None = None) -> None:
    """A consistent snapshot of the source streamed into the clone's database, on the node.

    The dump's tables are dropped and re-created in the target, so a re-run
    replaces an earlier partial copy. The dump carries the source site's data,
    names included: it is loaded by the clone's Linux user with the clone's
    database account, in binary mode (no client commands such as ``\\!``), never
    by root. Definers of triggers, views and routines become the clone's account.
    ``tables``: only these tables of the source (names with the site's prefix).
    """
    services.ensure_running("mariadb")
    dump = subprocess.Popen(
        ["mariadb-dump", "--single-transaction", "--quick", "--skip-lock-tables", "--routines", "--triggers",
         "--default-character-set=utf8mb4", source_db, *(tables or [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    load = subprocess.Popen(
        ["runuser", "-u", target_db, "--", "mariadb", "--no-defaults", "--batch", "--binary-mode", "--sandbox", "--comments",
         "--default-character-set=utf8mb4", f"--user={target_db}", "--host=localhost", target_db],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, MYSQL_PWD=target_password),
        cwd="/",
    )
    source_definer = f"DEFINER=`{source_db}`@`localhost`".encode()
    target_definer = f"DEFINER=`{target_db}`@`localhost`".encode()
    try:
        for line in dump.stdout:
            if b"DEFINER=" in line:
                line = line.replace(source_definer, target_definer)
            load.stdin.write(line)
    except BrokenPipeError:
        pass  # the loader died; its exit status says why
    finally:
        dump.stdout.close()
        try:
            load.stdin.close()
        except BrokenPipeError:
            pass
    load_err = load.stderr.read()
    load.wait()
    dump_err = dump.stderr.read()
    dump.wait()
    if dump.returncode != 0:
        raise NodeError("remote_step_failed", f"mariadb-dump of {source_db} exited {dump.returncode}: " + _tail(dump_err))
    if load.returncode != 0:
        raise NodeError("remote_step_failed", f"loading into {target_db} exited {load.returncode}: " + _tail(load_err))


def rewrite_urls(name: str, password: str, old_url: str, new_url: str, database: str | None = None,
                 prefix: str = TABLE_PREFIX) -> dict:
    """Every form of the source's URL (and bare host) in the clone's database -> the clone's.
    ``database``: another database the environment's account may write (a restore's fresh one,
    a promotion's incoming tables)."""
    if not SEARCH_REPLACE.exists():
        info("no search-replace program on this node: URLs not rewritten")
        return {"rewritten": False, "remaining": None}
    old_host, new_host = urlsplit(old_url).hostname, urlsplit(new_url).hostname
    replacements = [[old_url.rstrip("/"), new_url.rstrip("/")]]
    if old_host and new_host and old_host != new_host:
        # The host alone also appears (e-mail addresses, bare host settings); the
        # longer URL form wins where both match.
        replacements.append([old_host, new_host])
    request = {
        "db": {"host": "localhost", "name": database or name, "user": name, "password": password},
        "prefix": prefix,
        "replacements": replacements,
    }
    # As the clone's user: the rows are the site's data, decoded by PHP's unserialize().
    result = run(["runuser", "-u", name, "--", "php", str(SEARCH_REPLACE)], input=json.dumps(request), check=False,
                 timeout=3600, cwd="/")
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        detail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise NodeError("remote_step_failed", f"search-replace gave no answer: {detail}")
    if not answer.get("ok"):
        raise NodeError("remote_step_failed", f"search-replace failed: {answer.get('error', 'unknown error')}")
    remaining = answer.get("remaining") or {}
    info(f"rewrote {answer.get('rows_changed', 0)} rows; remaining occurrences: {json.dumps(remaining, sort_keys=True)}")
    return {"rewritten": True, "rows_changed": answer.get("rows_changed", 0), "remaining": remaining}


def clone(params: dict) -> dict:
    name = check_name(params["system_name"])
    source = params["source"]
    source_name = check_name(source["system_name"])
    if source_name == name:
        raise NodeError("bad_parameters", "an environment cannot be cloned onto itself")
    root = Path(params["root"])
    source_root = Path(source["root"])
    marker = root / DONE_MARKER
    changed = []
    result: dict = {}

    step("Linux user")
    if env_setup.ensure_user(name, root):
        changed.append("user")

    step("directories")
    # Both environments' directories checked: the site could have planted links in either.
    safe_fs.ensure_layout(root, name)
    if safe_fs.ensure_layout(source_root, source_name):
        services.reload("nginx")

    step("database and database user")
    env_setup.ensure_database(name, params["db_password"])

    # Its own, starting empty: the source's cache is not copied.
    step("Redis user")
    if redis_acl.ensure_user(name, params["redis"]["password"], params["redis"]["key_prefix"]):
        changed.append("redis user")

    step("wp-config.php")
    if env_setup.write_wp_config(root, name, params["files"]["wp_config"]):
        changed.append("wp-config.php")

    if marker.exists():
        info("the copy was completed by an earlier run")
        result = json.loads(marker.read_text() or "{}")
    else:
        step(f"copy the code of {source_name}")
        copied_from = copy_release(source_root, source_name, root, name, params["release"])
        env_setup.link_current(root, params["release"])
        info(f"release {copied_from} copied to {params['release']}")

        step(f"copy the uploads of {source_name}")
        copy_uploads(source_root, source_name, root, name)

        step(f"copy the database of {source_name} (consistent snapshot)")
        copy_database(source_name, name, params["db_password"])

        step(f"rewrite {source['url']} to {params['url']}")
        result = rewrite_urls(name, params["db_password"], source["url"], params["url"])
        result["copied_release"] = copied_from
        write_file(marker, json.dumps(result, sort_keys=True), 0o600)
        changed.append("copy")

    # The copied database was rewritten underneath any object cache: start it empty.
    step("Redis object cache")
    redis_acl.delete_keys(params["redis"]["key_prefix"])
    if site_cache.apply_object_cache(root, name, bool(params.get("object_cache"))):
        changed.append("object cache")

    step("PHP-FPM pool")
    if install_config(params["paths"]["pool"], params["files"]["pool"], env_setup.PHP_FPM_TEST):
        changed.append("pool")
    # Reloaded in any case: the code under an existing pool may have been copied anew.
    services.reload("php-fpm")

    step("Nginx server block")
    if install_config(params["paths"]["vhost"], params["files"]["vhost"], env_setup.NGINX_TEST):
        changed.append("vhost")
    # Reloaded in any case: also clears what Nginx may have cached for this host.
    services.reload("nginx")

    options = params.get("wp_options") or {}
    if options:
        step("WordPress settings of a non-production environment")
        for option, value in sorted(options.items()):
            wp_helper_client.call(name, {"command": "option-set", "root": str(root), "url": params["url"],
                                         "name": option, "value": value})
            info(f"{option} = {value}")

    return dict(result, changed=changed, release=safe_fs.current_release(root))


if __name__ == "__main__":
    main(clone)
