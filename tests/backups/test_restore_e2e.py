"""Restore end to end on the real local node against the loopback S3 server.

A full backup, then the site changes (posts, uploads, a plugin); the restore
brings back files byte-identical and the database logically identical to the
backup point, as a new release with the old one kept. A db backup leaves the
files alone. A backup whose stream does not match its checksum is refused
with nothing changed. A restore whose code fatals fails its health check and
is put back (release, uploads and database). Triggers move with their
tables both ways, and views (one on another) come back with the backup's
definitions, or the previous ones after a failed health check. The management command restores
too, and a restore as a new clone leaves production untouched."""

import subprocess
import tempfile
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.backups import services
from apps.backups.models import Backup
from apps.environments import naming
from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.models import Job
from tests.backups.conftest import vanished_lock_reads
from tests.backups.restore_support import (
    add_post,
    as_site,
    back_up,
    backup_point_state,
    database_state,
    entry,
    files_archive,
    forge_backup,
    post_titles,
    release_tree,
    restore,
    rewrite_archive,
    sql,
    uploads_tree,
)
from tests.sites.test_deploy_e2e import BREAKS_PAGES, commit, deploy, make_repository, readable_directory
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def repository():
    import shutil

    parent = readable_directory("pressluft-restore-repo-")
    yield make_repository(parent / "site.git")
    shutil.rmtree(parent)


def delete_site(api_client, site):
    response = api_client.delete(f"/api/sites/{site.id}")
    if response.status_code == 202:
        runner.run_job(response.json()["job_id"])


def scratch_databases(environment) -> list[str]:
    name = naming.system_name(environment)
    return sql("mysql", f"SHOW DATABASES LIKE '{name}\\_%';").split()


def triggers_of(database: str) -> list[str]:
    return sql("information_schema", "SELECT TRIGGER_NAME FROM TRIGGERS "
                                     f"WHERE TRIGGER_SCHEMA = '{database}' ORDER BY 1;").split()


def views_of(database: str) -> dict[str, tuple[str, str]]:
    """Each view's definition as the server keeps it (its own database's name left out) and its definer."""
    rows = sql("information_schema", "SELECT TABLE_NAME, HEX(VIEW_DEFINITION), DEFINER FROM VIEWS "
                                     f"WHERE TABLE_SCHEMA = '{database}' ORDER BY 1;")
    return {row.split("\t")[0]: (bytes.fromhex(row.split("\t")[1]).decode().replace(f"`{database}`.", ""),
                                 row.split("\t")[2]) for row in rows.splitlines()}


def as_site_sql(environment, statements: str) -> None:
    """SQL sent by the site's own database account, as a plugin would."""
    name = naming.system_name(environment)
    as_site(environment, "mariadb", f"--user={name}", f"--password={environment.db_password}", name,
            input=statements.encode())


def test_restore_in_place(api_client, local_node, backup_storage, repository, s3_request_log):
    site, production = create_site(api_client, "Kappa Kiosk", "kappa")
    try:
        _restore_in_place(api_client, site, production, repository)
    finally:
        delete_site(api_client, site)
    # Backups beside restores and pre-restore backups: no restic start read a lock removed under it
    # (it would have stalled for about 40 s).
    assert vanished_lock_reads(s3_request_log, backup_storage.backup_s3_bucket) == []


def _restore_in_place(api_client, site, production, repository):
    root = Path(naming.root(production))
    name = naming.system_name(production)
    job = deploy(api_client, production, f"{repository}#v1")
    assert job.status == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    v1 = production.current_release
    uploads = root / "shared" / "uploads"
    as_site(production, "mkdir", "-p", f"{uploads}/2026/12")
    as_site(production, "tee", f"{uploads}/2026/12/photo.bin", input=b"\x89PNG" + bytes(range(256)) * 400)
    as_site(production, "tee", f"{uploads}/2026/12/notes.txt", input=b"kept as it was\n")
    as_site(production, "ln", "-s", "photo.bin", f"{uploads}/2026/12/latest")
    as_site(production, "ln", "-s", "/etc/shadow", f"{uploads}/shadow-link")  # the site's own link: stays a link
    add_post(production, "Before the backup")
    # A plugin's trigger (created with the site's own database account, as a plugin would): MariaDB cannot move
    # a table with triggers to another database, so the restore carries them across (compound body included).
    sql(name, "CREATE TABLE wp_pl_audit (post_id BIGINT NOT NULL);\nDELIMITER //\n"
              f"CREATE DEFINER=`{name}`@`localhost` TRIGGER pl_audit_posts AFTER INSERT ON wp_posts FOR EACH ROW "
              "BEGIN INSERT INTO wp_pl_audit VALUES (NEW.ID); INSERT INTO wp_pl_audit VALUES (-NEW.ID); END//\n"
              "DELIMITER ;\n")
    # A plugin's views (made by the site's account), one reading the other: no view moves to another database,
    # so the restore creates the backup's again in the live database as the site's account.
    as_site_sql(production, "CREATE VIEW wp_pl_recent AS SELECT ID, post_title FROM wp_posts "
                            "WHERE post_type = 'post';\n"
                            "CREATE VIEW wp_pl_recent_titles AS SELECT post_title FROM wp_pl_recent;\n")
    point_views = views_of(name)
    assert set(point_views) == {"wp_pl_recent", "wp_pl_recent_titles"}
    assert {definer for _, definer in point_views.values()} == {f"{name}@localhost"}

    full = back_up(api_client, production, "full")
    # A second backup of the unchanged files names the first one's files snapshot: restoring it reads that one.
    again = back_up(api_client, production, "full")
    assert again.parts["files"]["reused_from"] == str(full.pk)
    assert again.parts["files"]["snapshot_id"] == full.parts["files"]["snapshot_id"]
    point_uploads = uploads_tree(production)
    point_release = release_tree(production, v1.directory)
    point_database = backup_point_state(site, full)
    assert "Before the backup" in point_database["wp_posts"]

    # The site changes: a plugin (a new release), posts, uploads.
    commit(repository, "mu-plugins/added-later.php", "<?php\n// added after the backup\n", "v2")
    job = deploy(api_client, production, f"{repository}#v2")
    assert job.status == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    v2 = production.current_release
    add_post(production, "After the backup")
    sql(name, "DELETE FROM wp_posts WHERE post_title = 'Before the backup';")
    as_site(production, "tee", f"{uploads}/2026/12/notes.txt", input=b"changed later\n")
    as_site(production, "rm", f"{uploads}/2026/12/photo.bin")
    as_site(production, "tee", f"{uploads}/2026/12/new.txt", input=b"new later\n")
    assert uploads_tree(production) != point_uploads
    # The views change too: one dropped, one replaced.
    as_site_sql(production, "DROP VIEW wp_pl_recent_titles;\n"
                            "CREATE OR REPLACE VIEW wp_pl_recent AS SELECT ID FROM wp_posts;\n")

    # Restore the full backup (the one whose files part is reused).
    job = restore(api_client, production, again, follow=False)
    assert job.status == "succeeded", job_log(job.pk)
    # The verdict did not wait for the removal of what was kept aside for the way back: restore_cleanup,
    # queued as the restore ended and ranked as if queued with it (the site's next job), removes it.
    cleanup = Job.objects.get(pk=job.result["cleanup_job_id"])
    assert (cleanup.job_type, cleanup.status, cleanup.environment_id) == ("restore_cleanup", "queued", production.pk)
    assert cleanup.created_at == job.created_at and cleanup.priority == job.priority
    assert sorted(scratch_databases(production)) == [f"{name}_prerestore", f"{name}_restore"]
    assert (root / "shared" / ".uploads-previous").is_dir()
    assert runner.run_job(cleanup.pk) == "succeeded", job_log(cleanup.pk)
    log = job_log(job.pk)
    assert "sha256 matches the backup" in log and "pre-restore full backup" in log
    production.refresh_from_db()
    site.refresh_from_db()
    assert (production.status, site.status) == ("active", "active")
    restored = production.current_release
    assert restored not in (v1, v2) and restored.source_type == "backup" and restored.health == "healthy"
    assert restored.directory == job.result["release"]
    # Byte-identical: the release the backup was taken of, and the uploads of that moment.
    assert release_tree(production, restored.directory) == point_release
    assert uploads_tree(production) == point_uploads
    assert Path(f"{uploads}/shadow-link").readlink() == Path("/etc/shadow")
    # The old releases stay for a rollback.
    assert (root / "releases" / v2.directory).is_dir() and production.releases.filter(pk=v2.pk).exists()
    # Logically identical database (the views' rows included: SHOW TABLES names them too), the backup's views.
    assert database_state(name) == point_database
    assert views_of(name) == point_views
    assert "Before the backup" in sql(name, "SELECT post_title FROM wp_pl_recent_titles;")
    assert post_titles(production) >= {"Before the backup"} and "After the backup" not in post_titles(production)
    # The trigger came back with its table and still fires.
    assert triggers_of(name) == ["pl_audit_posts"]
    audited = int(sql(name, "SELECT COUNT(*) FROM wp_pl_audit;"))
    add_post(production, "Audited after the restore")
    assert int(sql(name, "SELECT COUNT(*) FROM wp_pl_audit;")) == audited + 2
    # Nothing left aside: no scratch databases, no spare uploads directories, no scratch files.
    assert scratch_databases(production) == []
    # (object-cache.php: the Redis object cache drop-in, on by default; docs/caching.md)
    assert sorted(p.name for p in (root / "shared").iterdir()) == ["object-cache.php", "uploads", "wp-config.php"]
    assert not Path(f"/var/lib/pressluft/restore/{job.pk.hex}").exists()
    # The pre-restore backup holds the state just before the restore.
    pre = Backup.objects.get(pk=job.result["pre_restore_backup_id"])
    assert (pre.backup_scope, pre.status, pre.reason) == ("full", "completed", "pre_restore")
    assert pre.parts["files"]["release"] == v2.directory and pre.site_id == production.site_id
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "pressluft-test-theme Kappa Kiosk" in body

    # A db backup: the database goes back, files stay as they are.
    only_db = back_up(api_client, production, "db")
    add_post(production, "After the db backup")
    as_site(production, "tee", f"{uploads}/2026/12/after-db.txt", input=b"stays\n")
    files_before = uploads_tree(production)
    job = restore(api_client, production, only_db)
    assert job.status == "succeeded", job_log(job.pk)
    production.refresh_from_db()
    assert production.current_release == restored
    assert job.result["release"] is None and job.result["database"] is True
    assert uploads_tree(production) == files_before
    assert "After the db backup" not in post_titles(production)
    assert database_state(name) == backup_point_state(site, only_db)

    # A corrupted backup: its db snapshot is swapped for another one (the stream no longer matches). Refused,
    # nothing changed, no pre-restore backup taken.
    add_post(production, "Must survive")
    state_before = database_state(name)
    corrupted = Backup.objects.get(pk=only_db.pk)
    # (the pre-restore backup's: the full backup's dump is byte for byte the db backup's, taken right after restoring it)
    corrupted.parts["db"]["snapshot_id"] = pre.parts["db"]["snapshot_id"]
    corrupted.checksum = services.checksum_of(corrupted.parts)
    corrupted.save()
    backups_before = Backup.objects.count()
    job = restore(api_client, production, corrupted)
    assert (job.status, job.error_code) == ("failed", "backup_checksum_mismatch"), job_log(job.pk)
    assert "nothing was changed" in job.error_message
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == restored
    assert database_state(name) == state_before
    assert Backup.objects.count() == backups_before

    # A restore whose code fatals on every page: the health check fails, and the previous release, uploads and
    # database are put back. Forged from the full backup with a broken must-use plugin in its release.
    # The views live now differ from the backup's: the previous ones must come back.
    as_site_sql(production, "CREATE OR REPLACE VIEW wp_pl_recent_titles AS SELECT UPPER(post_title) AS t FROM "
                            "wp_pl_recent;\nCREATE VIEW wp_pl_live_only AS SELECT COUNT(*) AS n FROM wp_posts;\n")
    state_before, views_before = database_state(name), views_of(name)
    release_dir = full.parts["files"]["release"]
    broken_files = rewrite_archive(files_archive(site, full), [
        (entry(f"releases/{release_dir}/wp-content/mu-plugins/breaks-pages.php"), BREAKS_PAGES.encode()),
        (entry("shared/uploads/from-broken.txt"), b"from the broken backup\n"),
    ])
    broken = forge_backup(site, production, files=broken_files, db_from=full)
    uploads_before = uploads_tree(production)
    job = restore(api_client, production, broken)
    assert (job.status, job.error_code) == ("failed", "health_check_failed"), job_log(job.pk)
    assert "previous release, uploads and database are back" in job.error_message
    log = job_log(job.pk)
    assert "unhealthy" in log and "put the previous release, uploads and database back" in log
    production.refresh_from_db()
    site.refresh_from_db()
    assert (production.status, site.status) == ("active", "active")
    assert production.current_release == restored
    assert not (root / "releases" / job.payload["release"]).exists()
    assert database_state(name) == state_before and "Must survive" in post_titles(production)
    assert triggers_of(name) == ["pl_audit_posts"]  # put back with the previous tables
    assert views_of(name) == views_before and set(views_before) == {"wp_pl_live_only", *point_views}
    assert uploads_tree(production) == uploads_before
    assert scratch_databases(production) == []
    assert http_get(production.preview_url)[0] == 200

    # The management command, run here and now.
    call_command("restore_environment", site.slug, production.slug, "--backup", str(full.pk), "--wait")
    production.refresh_from_db()
    assert "Before the backup" in post_titles(production) and "Must survive" not in post_titles(production)


def test_restore_as_a_new_clone_leaves_production_untouched(api_client, local_node, backup_storage):
    site, production = create_site(api_client, "Lambda Lodge", "lambda")
    try:
        add_post(production, "Last week")
        as_site_sql(production, "CREATE VIEW wp_pl_recent AS SELECT ID, post_title FROM wp_posts;\n")
        full = back_up(api_client, production, "full")
        add_post(production, "This week")
        production_state = database_state(naming.system_name(production))
        production_release = production.current_release

        response = api_client.post(f"/api/backups/{full.pk}/restore-as-clone", {"slug": "last-week"}, format="json")
        assert response.status_code == 202, response.content
        job = Job.objects.get(pk=response.json()["job_id"])
        clone = Environment.objects.get(pk=job.environment_id)
        assert (clone.environment_type, clone.slug) == ("clone", "last-week")
        create = Job.objects.get(pk=job.payload["env_create_job_id"])
        assert runner.run_job(create.pk) == "succeeded", job_log(create.pk)
        assert runner.run_job(job.pk) == "succeeded", job_log(job.pk)
        cleanup = Job.objects.get(pk=Job.objects.get(pk=job.pk).result["cleanup_job_id"])
        assert runner.run_job(cleanup.pk) == "succeeded", job_log(cleanup.pk)
        assert scratch_databases(Environment.objects.get(pk=clone.pk)) == []
        clone.refresh_from_db()
        assert clone.status == "active"
        assert "Last week" in post_titles(clone) and "This week" not in post_titles(clone)
        clone_db = naming.system_name(clone)
        # The view came along, the clone's own (created by its account, its definer).
        assert views_of(clone_db) == {"wp_pl_recent": (views_of(naming.system_name(production))["wp_pl_recent"][0],
                                                       f"{clone_db}@localhost")}
        assert "Last week" in sql(clone_db, "SELECT post_title FROM wp_pl_recent;")
        assert sql(clone_db, "SELECT option_value FROM wp_options WHERE option_name = 'siteurl';").strip() \
            == clone.preview_url.rstrip("/")
        assert sql(clone_db, "SELECT option_value FROM wp_options WHERE option_name = 'blog_public';").strip() == "0"
        assert Job.objects.get(pk=job.pk).result["pre_restore_backup_id"] is None  # a new environment: nothing to lose
        assert production.preview_url.split("//")[1] not in sql(clone_db, "SELECT option_value FROM wp_options "
                                                                          "WHERE option_name = 'home';")
        status, _, body, _ = http_get(clone.preview_url)
        assert status == 200 and "Last week" in body
        # Production: as it was.
        production.refresh_from_db()
        assert production.status == "active" and production.current_release == production_release
        assert database_state(naming.system_name(production)) == production_state
    finally:
        delete_site(api_client, site)


def test_hostile_backup_archives(api_client, local_node, backup_storage):
    """Archives a tampered stream could hold: refused before anything changes,
    and nothing is ever written through a link or outside the environment."""
    site, production = create_site(api_client, "Mu Mill", "mu")
    try:
        _hostile(api_client, site, production)
    finally:
        delete_site(api_client, site)
        subprocess.run(["rm", "-f", "/etc/pressluft-restore-pwned", "/tmp/pressluft-restore-pwned"], check=False)
        subprocess.run("rm -rf /tmp/pressluft-restore-sentinel-*", shell=True, check=False)


def _hostile(api_client, site, production):
    import tarfile

    name = naming.system_name(production)
    root = Path(naming.root(production))
    files = back_up(api_client, production, "files")
    release_dir = files.parts["files"]["release"]
    original = files_archive(site, files)
    before_release = production.current_release
    before_uploads = uploads_tree(production)
    before_db = database_state(name)

    attacks = {
        "a link out of the release, then a file through it": [
            (entry(f"releases/{release_dir}/wp-content/plugins/out", tarfile.SYMTYPE, "/etc"), None),
            (entry(f"releases/{release_dir}/wp-content/plugins/out/pressluft-restore-pwned"), b"pwned\n"),
        ],
        "a file through a link in the uploads": [
            (entry("shared/uploads/etc", tarfile.SYMTYPE, "/etc"), None),
            (entry("shared/uploads/etc/pressluft-restore-pwned"), b"pwned\n"),
        ],
        "names leading out": [
            (entry("../../../../tmp/pressluft-restore-pwned"), b"pwned\n"),
            (entry("/etc/pressluft-restore-pwned"), b"pwned\n"),
        ],
        "a hard link and a device in the release": [
            (entry(f"releases/{release_dir}/shadow", tarfile.LNKTYPE, "/etc/shadow"), None),
            (entry(f"releases/{release_dir}/null", tarfile.CHRTYPE), None),
        ],
        "a relative link leading out of the release": [
            (entry(f"releases/{release_dir}/up", tarfile.SYMTYPE, "../../../.."), None),
        ],
    }
    for what, extra in attacks.items():
        forged = forge_backup(site, production, files=rewrite_archive(original, extra))
        job = restore(api_client, production, forged)
        assert (job.status, job.error_code) == ("failed", "backup_archive_invalid"), (what, job_log(job.pk))
        assert "nothing was changed" in job.error_message, what
        assert not Path("/etc/pressluft-restore-pwned").exists() and not Path("/tmp/pressluft-restore-pwned").exists()
        production.refresh_from_db()
        assert production.status == "active" and production.current_release == before_release, what
        assert uploads_tree(production) == before_uploads, what
        assert not any(p.name.startswith(".") and p.name.endswith(".partial") for p in (root / "releases").iterdir())
    assert database_state(name) == before_db

    sentinel = Path(tempfile.mkdtemp(prefix="pressluft-restore-sentinel-")) / "secret"
    sentinel.write_bytes(b"root's\n")
    sentinel.chmod(0o600)
    # What a site can really have in its uploads: links anywhere (kept as links, never followed), hard links
    # and FIFOs (left out). The restore goes through; root never wrote through a link.
    forged = forge_backup(site, production, files=rewrite_archive(original, [
        (entry("shared/uploads/sentinel-link", tarfile.SYMTYPE, str(sentinel)), None),
        (entry("shared/uploads/fifo", tarfile.FIFOTYPE), None),
        (entry("shared/uploads/hard", tarfile.LNKTYPE, "shared/wp-config.php"), None),
        (entry("shared/uploads/plain.txt"), b"plain\n"),
    ], drop=lambda member: member == "shared/wp-config.php"))
    job = restore(api_client, production, forged)
    assert job.status == "succeeded", job_log(job.pk)
    assert "left out of the uploads" in job_log(job.pk)
    uploads = root / "shared" / "uploads"
    assert (uploads / "sentinel-link").is_symlink() and (uploads / "plain.txt").read_bytes() == b"plain\n"
    assert not (uploads / "fifo").exists() and not (uploads / "hard").exists()
    assert (uploads / "plain.txt").stat().st_uid == (uploads).stat().st_uid != 0  # written by the site's user
    assert (uploads / "sentinel-link").readlink() == sentinel
    assert sentinel.read_bytes() == b"root's\n" and sentinel.stat().st_uid == 0
    # wp-config.php is the panel's, never the backup's.
    assert (root / "shared" / "wp-config.php").stat().st_uid == 0

    # An earlier restore's previous state still kept aside (it stopped half-way): refused before anything
    # changes, until an operator has looked.
    production.refresh_from_db()
    current = production.current_release
    kept_aside = root / "shared" / ".uploads-previous"
    kept_aside.mkdir()
    try:
        job = restore(api_client, production, files)
        assert (job.status, job.error_code) == ("failed", "remote_step_failed"), job_log(job.pk)
        assert "left the previous state aside" in job.error_message and "nothing was changed" in job.error_message
        production.refresh_from_db()
        assert production.status == "active" and production.current_release == current
    finally:
        kept_aside.rmdir()


def test_restore_cleanup_leaves_alone_what_a_later_restore_kept_aside(local_node):
    """restore_cleanup removes only what its own restore kept aside: once a later
    restore of the environment ran (one whose put-back failed leaves the
    previous state aside, maybe its only copy), what is aside is that one's,
    and the cleanup leaves it alone."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.environments.factories import EnvironmentFactory
    from apps.jobs.factories import JobFactory
    from apps.sites.factories import SiteFactory

    site = SiteFactory()
    environment = EnvironmentFactory(site=site, node=local_node)
    now = timezone.now()
    earlier = JobFactory(job_type="env_restore", site=site, environment=environment, node=local_node,
                         status="succeeded", started_at=now - timedelta(seconds=20),
                         finished_at=now - timedelta(seconds=10))
    cleanup = services.queue_restore_cleanup(environment, earlier)
    JobFactory(job_type="env_restore", site=site, environment=environment, node=local_node, status="failed",
               error_code="rollback_failed", started_at=now - timedelta(seconds=5), finished_at=now)
    assert runner.run_job(cleanup.pk) == "succeeded", job_log(cleanup.pk)
    log = job_log(cleanup.pk)
    assert "left alone" in log and "remove what" not in log
