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
import services
import wp_helper_client
from nodelib import LIB_DIR, NodeError, info, install_config, main, run, step, write_file

DONE_MARKER = ".pressluft-clone-complete"
SEARCH_REPLACE = LIB_DIR / "pressluft-search-replace.php"
TABLE_PREFIX = "wp_"  # what wp-config.php.tmpl sets for every environment


def check_name(name: str) -> str:
    if not env_setup.NAME.match(name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    return name


def source_release(source_root: Path) -> Path:
    current = source_root / "current"
    if not current.is_symlink() or not (current / "wp-load.php").exists():
        raise NodeError("remote_step_failed", f"the source environment has no current release at {current}")
    return (source_root / os.readlink(current)).resolve()


def copy_release(source_root: Path, root: Path, release: str) -> str:
    """The source's current release as a new release of the clone, its files
    hardlinked, not copied: release files are root's and writable by neither
    environment's user (release_files.seal), so sharing an inode is safe.
    """
    origin = source_release(source_root)
    releases = root / "releases"
    final = releases / release
    partial = releases / f".{release}.partial"
    release_files.remove(partial)
    # A copy from an earlier, interrupted run: copy again, the source may differ.
    release_files.remove(final)
    # A release of the source built before releases were sealed must not be
    # shared as it is: its files are writable by the source's user.
    release_files.seal(origin)
    release_files.link_tree(origin, partial)
    # Links recreated so they can only ever point at the clone's own shared/; the
    # plugins current even if the source's release predates them.
    release_files.attach_pressluft_parts(partial)
    release_files.seal(partial)
    partial.rename(final)
    return origin.name


def copy_uploads(source_root: Path, root: Path, name: str) -> None:
    origin = source_root / "shared" / "uploads"
    target = root / "shared" / "uploads"
    if origin.is_dir():
        # --delete: a re-run leaves exactly the source's files, nothing from an older attempt.
        run(["rsync", "-a", "--delete", "--no-owner", "--no-group", f"{origin}/", f"{target}/"])
    run(["chown", "-R", "--no-dereference", f"{name}:{env_setup.WEB_GROUP}", str(target)])
    run(["chmod", "-R", "u=rwX,g=rX,o=", str(target)])


def copy_database(source_db: str, target_db: str) -> None:
    """A consistent snapshot of the source streamed into the clone's database, on the node.

    Two processes joined by a pipe, no shell: the dump's tables are dropped
    and re-created in the target, so a re-run replaces an earlier partial copy.
    """
    services.ensure_running("mariadb")
    dump = subprocess.Popen(
        ["mariadb-dump", "--single-transaction", "--quick", "--skip-lock-tables", "--routines", "--triggers",
         "--default-character-set=utf8mb4", source_db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    load = subprocess.Popen(
        ["mariadb", "--batch", "--default-character-set=utf8mb4", target_db],
        stdin=dump.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    dump.stdout.close()  # only the loader reads it now, so the dump sees a closed pipe if the loader dies
    load_out, load_err = load.communicate()
    dump_err = dump.stderr.read()
    dump.wait()
    if dump.returncode != 0:
        raise NodeError("remote_step_failed", f"mariadb-dump of {source_db} exited {dump.returncode}: "
                        + dump_err.decode(errors="replace").strip()[-300:])
    if load.returncode != 0:
        raise NodeError("remote_step_failed", f"loading into {target_db} exited {load.returncode}: "
                        + load_err.decode(errors="replace").strip()[-300:])


def rewrite_urls(name: str, password: str, old_url: str, new_url: str) -> dict:
    """Every form of the source's URL (and bare host) in the clone's database -> the clone's."""
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
        "db": {"host": "localhost", "name": name, "user": name, "password": password},
        "prefix": TABLE_PREFIX,
        "replacements": replacements,
    }
    result = run(["php", str(SEARCH_REPLACE)], input=json.dumps(request), check=False, timeout=3600)
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
    env_setup.ensure_dir(root, name, env_setup.WEB_GROUP, 0o750)
    env_setup.ensure_dir(root / "releases", release_files.OWNER, release_files.OWNER, 0o755)
    env_setup.ensure_dir(root / "shared", name, env_setup.WEB_GROUP, 0o750)
    env_setup.ensure_dir(root / "shared" / "uploads", name, env_setup.WEB_GROUP, 0o750)
    env_setup.ensure_dir(root / "tmp", name, name, 0o700)
    env_setup.ensure_dir(root / "logs", name, name, 0o750)

    step("database and database user")
    env_setup.ensure_database(name, params["db_password"])

    # Its own, starting empty: the source's cache is not copied.
    step("Redis user")
    if redis_acl.ensure_user(name, params["redis"]["password"], params["redis"]["key_prefix"]):
        changed.append("redis user")

    step("wp-config.php")
    if write_file(root / "shared" / "wp-config.php", params["files"]["wp_config"], 0o600, owner=name, group=name):
        changed.append("wp-config.php")

    if marker.exists():
        info("the copy was completed by an earlier run")
        result = json.loads(marker.read_text() or "{}")
    else:
        step(f"copy the code of {source_name}")
        copied_from = copy_release(source_root, root, params["release"])
        env_setup.link_current(root, params["release"])
        info(f"release {copied_from} copied to {params['release']}")

        step(f"copy the uploads of {source_name}")
        copy_uploads(source_root, root, name)

        step(f"copy the database of {source_name} (consistent snapshot)")
        copy_database(source_name, name)

        step(f"rewrite {source['url']} to {params['url']}")
        result = rewrite_urls(name, params["db_password"], source["url"], params["url"])
        result["copied_release"] = copied_from
        write_file(marker, json.dumps(result, sort_keys=True), 0o600)
        changed.append("copy")

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

    return dict(result, changed=changed, release=os.readlink(root / "current").split("/")[-1])


if __name__ == "__main__":
    main(clone)
