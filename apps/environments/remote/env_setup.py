#!/usr/bin/env python3
"""Create (or complete) one environment on this node. Idempotent: every step
checks what exists, so a re-run after a failure finishes the work without
duplicating anything.

Parameters (JSON on stdin), all produced by the panel:
  system_name   Linux user, PHP-FPM pool and database/user name (pl + 12 hex)
  root          the environment's directory
  url           its canonical URL (the preview URL)
  release       name of the first release directory
  db_password   the database user's password
  core          {"type": "directory", "path": ...} or {"type": "tarball", "url": ..., "sha1": ...}
  files         rendered configs: {"wp_config", "pool", "vhost"}
  paths         where the configs go: {"pool", "vhost"}
  install       {"title", "admin_user", "admin_email", "admin_password"} or null
  redis         {"password", "key_prefix"}: the environment's own Redis user
  object_cache  whether the Redis object cache drop-in is installed
"""

import hashlib
import os
import pwd
import re
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

import redis_acl
import release_files
import safe_fs
import services
import site_cache
import wp_helper_client
from nodelib import NodeError, info, install_config, main, run, step, write_file

NAME = re.compile(r"^pl[0-9a-f]{12}$")
WEB_GROUP = safe_fs.WEB_GROUP
PHP_FPM_TEST = ["/usr/sbin/php-fpm8.2", "-t"]
NGINX_TEST = ["/usr/sbin/nginx", "-t", "-q"]


def ensure_user(name: str, root: Path) -> bool:
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        pass
    run(["useradd", "--system", "--home-dir", str(root), "--no-create-home", "--shell", "/usr/sbin/nologin",
         "--user-group", name])
    return True


def sql_quote(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9]{16,128}", value):
        raise NodeError("bad_parameters", "database password has an unexpected form")
    return f"'{value}'"


def ensure_database(name: str, password: str) -> None:
    services.ensure_running("mariadb")
    statements = "\n".join(
        [
            f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;",
            f"CREATE USER IF NOT EXISTS '{name}'@'localhost' IDENTIFIED BY {sql_quote(password)};",
            f"ALTER USER '{name}'@'localhost' IDENTIFIED BY {sql_quote(password)};",
            f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'localhost';",
        ]
    )
    run(["mariadb", "--batch"], input=statements)


def fetch_core(core: dict, destination: Path) -> None:
    """Put WordPress core files into ``destination`` (which does not exist yet)."""
    if core["type"] == "directory":
        # Debian's package holds a few symlinks into /etc; copy what they point to.
        run(["cp", "-aL", core["path"], str(destination)])
        for leftover in ("wp-config.php", ".htaccess"):
            target = destination / leftover
            if target.exists() or target.is_symlink():
                target.unlink()
        return
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "wordpress.tar.gz"
        with urllib.request.urlopen(core["url"], timeout=120) as response, open(archive, "wb") as handle:
            shutil.copyfileobj(response, handle)
        expected = core.get("sha1") or _published_sha1(core["url"])
        digest = hashlib.sha1(archive.read_bytes()).hexdigest()
        if digest != expected:
            raise NodeError("core_checksum_mismatch", f"WordPress archive checksum {digest} != {expected}")
        with tarfile.open(archive) as bundle:
            bundle.extractall(scratch, filter="data")
        shutil.move(str(Path(scratch) / "wordpress"), destination)


def _published_sha1(url: str) -> str:
    with urllib.request.urlopen(url + ".sha1", timeout=60) as response:
        value = response.read().decode().split()[0].strip()
    if not re.fullmatch(r"[0-9a-f]{40}", value):
        raise NodeError("core_checksum_mismatch", "the published checksum of the WordPress archive is unreadable")
    return value


def build_release(root: Path, release: str, core: dict, name: str) -> bool:
    releases = root / "releases"
    final = releases / release
    live = safe_fs.current_release(root)
    if live is not None and (releases / live / "wp-load.php").is_file():
        return False
    if not (final / ".pressluft-complete").is_file():
        staging = releases / f".{release}.partial"
        release_files.remove(staging)
        release_files.remove(final)
        fetch_core(core, staging)
        # Releases are immutable: what changes at run time lives in shared/.
        release_files.attach_pressluft_parts(staging)
        release_files.replace_file(staging / ".pressluft-complete", (release + "\n").encode())
        account = safe_fs.Account.of(name)
        release_files.seal(staging, (account.uid, account.gid))
        staging.rename(final)
    safe_fs.check_release(root, release)
    link_current(root, release)
    return True


def write_wp_config(root: Path, name: str, content: str) -> bool:
    """shared/wp-config.php: root's, readable by the site (its group), never writable by it."""
    return write_file(root / "shared" / "wp-config.php", content, 0o640, owner="root", group=name)


def link_current(root: Path, release: str) -> None:
    temporary = root / ".current.new"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(f"releases/{release}")
    os.replace(temporary, root / "current")


def setup(params: dict) -> dict:
    name = params["system_name"]
    if not NAME.match(name):
        raise NodeError("bad_parameters", "unexpected environment system name")
    root = Path(params["root"])
    changed = []

    step("Linux user")
    if ensure_user(name, root):
        changed.append("user")

    step("directories")
    # What the site could plant there (links in place of directories) is refused, not followed.
    web_server_joined = safe_fs.ensure_layout(root, name)

    step("database and database user")
    ensure_database(name, params["db_password"])

    step("Redis user")
    if redis_acl.ensure_user(name, params["redis"]["password"], params["redis"]["key_prefix"]):
        changed.append("redis user")

    step("wp-config.php")
    if write_wp_config(root, name, params["files"]["wp_config"]):
        changed.append("wp-config.php")

    step("release with WordPress core")
    if build_release(root, params["release"], params["core"], name):
        changed.append("release")

    step("Redis object cache drop-in")
    if site_cache.apply_object_cache(root, name, bool(params.get("object_cache"))):
        changed.append("object cache")

    step("PHP-FPM pool")
    if install_config(params["paths"]["pool"], params["files"]["pool"], PHP_FPM_TEST):
        changed.append("pool")
        services.reload("php-fpm")
    else:
        services.ensure_running("php-fpm")

    step("Nginx server block")
    if install_config(params["paths"]["vhost"], params["files"]["vhost"], NGINX_TEST):
        changed.append("vhost")
        services.reload("nginx")
    elif web_server_joined:
        services.reload("nginx")  # new workers see their new group
    else:
        services.ensure_running("nginx")

    installed = None
    if params.get("install"):
        step("WordPress installation")
        request = dict(params["install"], command="install", root=str(root), url=params["url"])
        answer = wp_helper_client.call(name, request, timeout=300)
        installed = answer.get("changed")
        if installed:
            changed.append("wordpress")
        info("WordPress installed" if installed else "WordPress was installed already")

    return {"changed": changed, "release": safe_fs.current_release(root)}


if __name__ == "__main__":
    main(setup)
