"""Helpers of the restore tests: the site's database and files as they are on
the node, and backups forged straight into the site's real restic repository
(what a backup stream would hold if it had been tampered with)."""

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

from django.utils import timezone

from apps.backups import services, storage
from apps.backups.models import Backup
from apps.environments import naming
from apps.jobs import runner
from apps.jobs.models import Job
from tests.sites.test_site_lifecycle_e2e import job_log

VOLATILE_OPTIONS = "option_name NOT LIKE '%transient%' AND option_name NOT IN ('cron', 'recently_activated')"


def restic(site, *args, input: bytes | None = None) -> bytes:
    config = storage.configured_storage()
    env = {"PATH": os.environ["PATH"], "HOME": "/root", "RESTIC_REPOSITORY": config.repository_url(site.pk),
           "RESTIC_PASSWORD": storage.repository_password(site), "AWS_ACCESS_KEY_ID": config.access_key_id,
           "AWS_SECRET_ACCESS_KEY": config.secret_access_key}
    return subprocess.run(["restic", "--no-cache", "-o", f"s3.region={config.region}", *args], env=env, input=input,
                          capture_output=True, check=True, timeout=300).stdout


def sql(database: str, statement: str) -> str:
    return subprocess.run(["mariadb", "--batch", "--skip-column-names", database], input=statement, text=True,
                          capture_output=True, check=True).stdout


def database_state(database: str) -> dict:
    """Every table's rows (ordered), wp_options without what WordPress rewrites on any page view."""
    state = {}
    for table in sql(database, "SHOW TABLES;").split():
        where = f" WHERE {VOLATILE_OPTIONS}" if table == "wp_options" else ""
        state[table] = sql(database, f"SELECT * FROM `{table}`{where} ORDER BY 1;")
    return state


def backup_point_state(site, backup: Backup) -> dict:
    """The database as the backup holds it: its dump loaded into a scratch database."""
    dump = restic(site, "dump", backup.parts["db"]["snapshot_id"], "/database.sql")
    scratch = f"pltestpoint{backup.pk.hex[:8]}"
    subprocess.run(["mariadb"], input=f"DROP DATABASE IF EXISTS `{scratch}`; CREATE DATABASE `{scratch}`;".encode(),
                   check=True)
    try:
        # Loaded by root: the site's views (whose definer has no rights on this scratch database) become root's.
        dump = re.sub(rb"DEFINER=`[^`]+`@`localhost`", b"DEFINER=CURRENT_USER", dump)
        loaded = subprocess.run(["mariadb", scratch], input=dump, capture_output=True)
        assert loaded.returncode == 0, loaded.stderr.decode(errors="replace")
        return database_state(scratch)
    finally:
        subprocess.run(["mariadb"], input=f"DROP DATABASE IF EXISTS `{scratch}`;".encode(), check=True)


def tree(path: Path, skip: tuple[str, ...] = ()) -> dict:
    """name -> ("file", sha256) | ("link", target) | ("dir",), never following a link."""
    found = {}
    for directory, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            full = Path(directory) / name
            relative = str(full.relative_to(path))
            if relative in skip:
                continue
            if full.is_symlink():
                found[relative] = ("link", os.readlink(full))
            elif full.is_dir():
                found[relative] = ("dir",)
            else:
                found[relative] = ("file", hashlib.sha256(full.read_bytes()).hexdigest())
    return found


def release_tree(environment, directory: str) -> dict:
    return tree(Path(naming.root(environment)) / "releases" / directory, skip=(".pressluft-complete",))


def uploads_tree(environment) -> dict:
    return tree(Path(naming.root(environment)) / "shared" / "uploads")


def as_site(environment, *argv, input: bytes | None = None):
    subprocess.run(["runuser", "-u", naming.system_name(environment), "--", *argv], check=True, cwd="/", input=input,
                   stdout=subprocess.DEVNULL)


def add_post(environment, title: str) -> None:
    sql(naming.system_name(environment),
        "INSERT INTO wp_posts (post_author, post_date, post_date_gmt, post_content, post_title, post_excerpt, "
        "post_status, post_name, to_ping, pinged, post_modified, post_modified_gmt, post_content_filtered, "
        f"post_type) VALUES (1, NOW(), NOW(), 'body of {title}', '{title}', '', 'publish', '{title.lower()}', '', '', "
        "NOW(), NOW(), '', 'post');")


def post_titles(environment) -> set[str]:
    return set(sql(naming.system_name(environment),
                   "SELECT post_title FROM wp_posts WHERE post_type = 'post';").splitlines())


def back_up(api_client, environment, scope) -> Backup:
    response = api_client.post(f"/api/environments/{environment.pk}/backups", {"backup_scope": scope}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)
    return Backup.objects.get(pk=Job.objects.get(pk=job_id).payload["backup_id"])


def restore(api_client, environment, backup, *, follow: bool = True) -> Job:
    """The restore job run here; ``follow``: then the restore_cleanup it queued
    when healthy (what the workers run next on the site)."""
    response = api_client.post(f"/api/environments/{environment.pk}/restore", {"backup_id": str(backup.pk)},
                               format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    runner.run_job(job_id)
    job = Job.objects.get(pk=job_id)
    if follow and job.result.get("cleanup_job_id"):
        assert runner.run_job(job.result["cleanup_job_id"]) == "succeeded"
    return job


def forge_backup(site, environment, *, files: bytes | None = None, db_from: Backup | None = None) -> Backup:
    """A completed Backup whose files part is ``files`` (a tar stream), stored
    in the site's repository as backup_create stores its parts, with its true
    checksum recorded; the database part, if any, is ``db_from``'s."""
    parts = {}
    if files is not None:
        restic(site, "backup", "--json", "--stdin", "--stdin-filename", "files.tar", "--host", "forged", input=files)
        snapshot = restic(site, "snapshots", "--json", "--host", "forged", "--latest", "1")
        snapshot_id = sorted(json.loads(snapshot), key=lambda item: item["time"])[-1]["id"]
        parts["files"] = {"snapshot_id": snapshot_id, "sha256": hashlib.sha256(files).hexdigest(),
                          "bytes": len(files), "added_bytes": 0}
    if db_from is not None:
        parts["db"] = dict(db_from.parts["db"])
    return Backup.objects.create(
        environment=environment, site_id=environment.site_id, site_slug=environment.site.slug,
        environment_slug=environment.slug, environment_uid=environment.pk, environment_url=environment.preview_url,
        backup_scope="full" if len(parts) == 2 else next(iter(parts)), status="completed",
        storage_path=storage.configured_storage().repository_location(site.pk), parts=parts,
        checksum=services.checksum_of(parts), size_bytes=sum(part["bytes"] for part in parts.values()),
        completed_at=timezone.now(),
    )


def files_archive(site, backup: Backup) -> bytes:
    return restic(site, "dump", backup.parts["files"]["snapshot_id"], "/files.tar")


def rewrite_archive(original: bytes, extra: list[tuple[tarfile.TarInfo, bytes | None]],
                    drop=lambda name: False) -> bytes:
    """``original`` (a tar) with ``drop``ped members left out and ``extra`` ones appended."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(original)) as source, tarfile.open(fileobj=out, mode="w",
                                                                            format=tarfile.PAX_FORMAT) as target:
        for member in source.getmembers():
            if drop(member.name):
                continue
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        for info, data in extra:
            if data is not None:
                info.size = len(data)
            target.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def entry(name: str, kind=tarfile.REGTYPE, linkname: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, mode
    return info
