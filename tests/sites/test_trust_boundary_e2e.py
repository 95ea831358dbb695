"""The trust boundary on the real local node: the site's own Linux user is what
one vulnerable plugin hands an attacker. Each test performs an attack as that
user (``runuser``), then runs the panel operation that root carries out on the
node, and checks the node refused to follow the site and changed nothing
outside it (docs/security.md)."""

import os
import pwd
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from apps.environments import naming, node_ops
from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.errors import JobError
from apps.jobs.models import Job
from apps.sites.models import Site
from tests.environments.archives import make_tar
from tests.sites.test_deploy_sources_e2e import THEME_ARCHIVE, deploy, upload
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "-----BEGIN OPENSSH PRIVATE KEY----- pressluft-test-secret"
# A line the health check would report if it read the file it was pointed at.
SECRET_FATAL = "[02-Dec-2026 10:00:00 UTC] PHP Fatal error:  pressluft-test-secret in /x.php:1\n"


def as_site(environment, *argv: str) -> subprocess.CompletedProcess:
    """A command as the environment's Linux user: the attacker's position."""
    return subprocess.run(["runuser", "-u", naming.system_name(environment), "--", *argv],
                          capture_output=True, text=True, cwd="/")


def tree_state(path: Path) -> list:
    """Owner, mode and content of a directory tree, to prove it was not touched."""
    state = []
    for entry in [path, *sorted(path.rglob("*"))]:
        info = os.lstat(entry)
        content = entry.read_bytes() if stat.S_ISREG(info.st_mode) else None
        state.append((str(entry), info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), content))
    return state


@pytest.fixture
def secret_dir():
    """A root-only directory outside every environment, like /root/.ssh."""
    path = Path(f"/var/lib/pressluft-test-secret-{uuid.uuid4().hex[:8]}")
    path.mkdir(mode=0o700)
    (path / "id_ed25519").write_text(SECRET)
    os.chmod(path / "id_ed25519", 0o600)
    (path / "php-error.log").write_text(SECRET_FATAL)
    os.chmod(path / "php-error.log", 0o600)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def site(api_client, local_node):
    site, production = create_site(api_client, "Kappa Keys", "kappa")
    yield site, production
    if Site.objects.filter(pk=site.pk).exists():
        for environment in Environment.objects.filter(site=site).exclude(status="active"):
            api_client.post(f"/api/environments/{environment.id}/reset")
        api_client.post(f"/api/sites/{site.id}/reset")
        response = api_client.delete(f"/api/sites/{site.id}")
        assert response.status_code == 202, response.content
        assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])


def release_dirs(environment) -> list[str]:
    return sorted(p.name for p in (Path(naming.root(environment)) / "releases").iterdir())


def no_release_holds(environment, needle: str) -> bool:
    for path in (Path(naming.root(environment)) / "releases").rglob("*"):
        if path.is_file() and not path.is_symlink() and needle.encode() in path.read_bytes():
            return False
    return True


def reset(api_client, environment):
    api_client.post(f"/api/environments/{environment.id}/reset")
    api_client.post(f"/api/sites/{environment.site_id}/reset")


def test_the_site_user_cannot_change_what_root_follows(site):
    _, production = site
    root = Path(naming.root(production))
    name = naming.system_name(production)
    user = pwd.getpwnam(name)
    expected = {
        root: (0, user.pw_gid, 0o750),
        root / "releases": (0, 0, 0o755),
        root / "shared": (0, user.pw_gid, 0o750),
        root / "shared" / "wp-config.php": (0, user.pw_gid, 0o640),
        root / "shared" / "uploads": (user.pw_uid, None, 0o750),
        root / "tmp": (user.pw_uid, user.pw_gid, 0o700),
        root / "logs": (user.pw_uid, user.pw_gid, 0o700),
    }
    for path, (uid, gid, mode) in expected.items():
        info = os.lstat(path)
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (uid, mode), path
        assert gid is None or info.st_gid == gid, path
    current = os.readlink(root / "current")
    release = root / current
    attacks = [
        ["ln", "-sfn", "/etc", str(root / "current")],
        ["mv", str(root / "current"), str(root / "current.old")],
        ["ln", "-s", "/root/.ssh", str(root / "releases" / "20990101T000000Z")],
        ["mv", str(root / "tmp"), str(root / "tmp.old")],
        ["mv", str(root / "logs"), str(root / "logs.old")],
        ["mv", str(root / "shared" / "uploads"), str(root / "shared" / "uploads.old")],
        ["ln", "-sf", "/etc/shadow", str(root / "shared" / "wp-config.php")],
        ["sh", "-c", f"echo '<?php evil();' >> {root / 'shared' / 'wp-config.php'}"],
        ["touch", str(release / "wp-content" / "planted.php")],
        ["sh", "-c", f"echo 'evil' >> {release / 'index.php'}"],
    ]
    for attack in attacks:
        result = as_site(production, *attack)
        assert result.returncode != 0, f"the site's user could run {attack}"
    assert os.readlink(root / "current") == current
    assert sorted(p.name for p in root.iterdir()) == ["current", "logs", "releases", "shared", "tmp"]
    assert b"evil" not in (release / "index.php").read_bytes()


def test_current_pointed_out_of_the_releases_is_refused(api_client, site, secret_dir, tmp_path):
    _, production = site
    root = Path(naming.root(production))
    original = os.readlink(root / "current")
    archive = upload(api_client, production, make_tar(tmp_path / "theme.tar.gz", THEME_ARCHIVE))
    assert archive.status_code == 201, archive.content
    # The site's user can no longer repoint current (test above); an environment
    # from before the fix could have had it done, so the link is put there as root.
    for target in (str(secret_dir), "releases/../../../" + str(secret_dir).lstrip("/")):
        before = tree_state(secret_dir)
        releases_before = release_dirs(production)
        (root / ".current.attack").symlink_to(target)
        os.replace(root / ".current.attack", root / "current")

        job = deploy(api_client, production, "upload", archive.json()["id"])
        assert (job.status, job.error_code) == ("failed", "unsafe_path"), job_log(job.pk)
        assert "current" in job.error_message
        reset(api_client, production)

        response = api_client.post(f"/api/sites/{production.site_id}/environments",
                                   {"name": "Staging", "slug": "staging", "type": "staging", "promotion_preset": "content-protect"}, format="json")
        assert response.status_code == 202, response.content
        job_id = response.json()["job_id"]
        runner.run_job(job_id)
        job = Job.objects.get(pk=job_id)
        assert (job.status, job.error_code) == ("failed", "unsafe_path"), job_log(job_id)
        clone = Environment.objects.get(pk=job.environment_id)
        assert not (Path(naming.root(clone)) / "releases").exists() or not release_dirs(clone)
        reset(api_client, clone)
        delete = api_client.delete(f"/api/environments/{clone.id}")
        assert delete.status_code == 202, delete.content
        assert runner.run_job(delete.json()["job_id"]) == "succeeded", job_log(delete.json()["job_id"])
        reset(api_client, production)

        response = api_client.post(f"/api/environments/{production.id}/health-check")
        assert response.status_code == 202, response.content
        runner.run_job(response.json()["job_id"])
        job = Job.objects.get(pk=response.json()["job_id"])
        assert (job.status, job.error_code) == ("failed", "unsafe_path"), job_log(job.pk)

        assert tree_state(secret_dir) == before
        assert release_dirs(production) == releases_before
        assert no_release_holds(production, SECRET)
        reset(api_client, production)

    (root / ".current.attack").symlink_to(original)
    os.replace(root / ".current.attack", root / "current")
    job = deploy(api_client, production, "upload", archive.json()["id"])
    assert job.status == "succeeded", job_log(job.pk)


def make_old_layout(environment):
    """The layout environments had before this fix: their root was the site's own."""
    root = Path(naming.root(environment))
    os.chown(root, pwd.getpwnam(naming.system_name(environment)).pw_uid, -1)


@pytest.mark.parametrize("planted", ["tmp", "logs", "shared", "shared/uploads"])
def test_links_planted_in_an_old_layout_are_refused_on_a_retried_setup(site, secret_dir, planted):
    _, production = site
    root = Path(naming.root(production))
    make_old_layout(production)
    if planted == "shared/uploads":
        # The old layout had shared/ the site's own too.
        os.chown(root / "shared", pwd.getpwnam(naming.system_name(production)).pw_uid, -1)
    before = tree_state(secret_dir)
    place = root / planted
    attack = as_site(production, "sh", "-c", f"mv {place} {place}.old && ln -s {secret_dir} {place}")
    assert attack.returncode == 0, attack.stderr

    with pytest.raises(JobError) as refused:
        node_ops.setup(production, release=production.current_release.directory, install=None)
    assert refused.value.code == "unsafe_path"
    assert planted in refused.value.message
    assert tree_state(secret_dir) == before
    # The refused run already took the environment root back: the site can plant nothing more there.
    assert os.lstat(root).st_uid == 0
    assert as_site(production, "ln", "-s", "/etc", str(root / "etc")).returncode != 0

    os.unlink(place)
    os.rename(f"{place}.old", place)
    result = node_ops.setup(production, release=production.current_release.directory, install=None)
    assert result["release"] == production.current_release.directory
    assert http_get(production.preview_url)[0] == 200


def test_the_health_check_reads_the_error_log_as_the_site(site, secret_dir):
    _, production = site
    log = Path(naming.root(production)) / "logs" / "php-error.log"
    for target in ("/dev/zero", str(secret_dir / "php-error.log")):
        planted = as_site(production, "ln", "-sfn", target, str(log))
        assert planted.returncode == 0, planted.stderr
        with pytest.raises(JobError) as refused:
            node_ops.run_program(production.node, "env_health.py",
                                 dict(node_ops._base(production), since=0), timeout=30)
        assert refused.value.code == "unsafe_path"
        assert "pressluft-test-secret" not in refused.value.message
    # A hardlink to the secret is no way around it: the kernel refuses it to the site's user.
    os.unlink(log)
    assert as_site(production, "ln", str(secret_dir / "php-error.log"), str(log)).returncode != 0
    # Its own log, as it should be, is read.
    as_site(production, "sh", "-c", f"printf '%s' '{SECRET_FATAL.replace('pressluft-test-secret', 'own')}' > {log}")
    report = node_ops.run_program(production.node, "env_health.py", dict(node_ops._base(production), since=0), timeout=30)
    assert report["fatal_errors"] and "own" in report["fatal_errors"][0]


def test_a_clone_copies_uploads_without_following_the_sites_links(api_client, site, secret_dir):
    _, production = site
    uploads = Path(naming.root(production)) / "shared" / "uploads"
    for command in (
        f"mkdir -p {uploads}/2026 && echo 'a real upload' > {uploads}/2026/photo.txt",
        f"ln -s {secret_dir}/id_ed25519 {uploads}/key.txt",
        f"ln -s / {uploads}/rootfs",
    ):
        planted = as_site(production, "sh", "-c", command)
        assert planted.returncode == 0, planted.stderr
    before = tree_state(secret_dir)

    response = api_client.post(f"/api/sites/{production.site_id}/environments",
                               {"name": "Staging", "slug": "staging", "type": "staging", "promotion_preset": "content-protect"}, format="json")
    job_id = response.json()["job_id"]
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)
    clone = Environment.objects.get(pk=Job.objects.get(pk=job_id).environment_id)
    copied = Path(naming.root(clone)) / "shared" / "uploads"
    clone_uid = pwd.getpwnam(naming.system_name(clone)).pw_uid
    assert (copied / "2026" / "photo.txt").read_text() == "a real upload\n"
    for link in ("key.txt", "rootfs"):
        assert (copied / link).is_symlink() and os.lstat(copied / link).st_uid == clone_uid
    assert all(SECRET.encode() not in p.read_bytes() for p in copied.rglob("*") if p.is_file() and not p.is_symlink())
    assert tree_state(secret_dir) == before
    # Nginx follows none of them.
    assert http_get(clone.preview_url, "/wp-content/uploads/2026/photo.txt")[0] == 200
    for path in ("/wp-content/uploads/key.txt", "/wp-content/uploads/rootfs/etc/passwd"):
        status, _, body, _ = http_get(clone.preview_url, path)
        # Refused, or handed to WordPress as a missing file: never the link's target.
        assert status != 200 and "pressluft-test-secret" not in body and "root:x:" not in body


def test_nginx_follows_no_link_into_another_sites_files(api_client, site, local_node):
    _, alpha = site
    beta_site, beta = create_site(api_client, "Lambda Lamps", "lambda")
    try:
        beta_file = Path(naming.root(beta)) / "shared" / "uploads" / "private.txt"
        assert as_site(beta, "sh", "-c", f"echo 'beta private upload' > {beta_file}").returncode == 0
        assert http_get(beta.preview_url, "/wp-content/uploads/private.txt")[0] == 200
        alpha_uploads = Path(naming.root(alpha)) / "shared" / "uploads"
        for command in (
            f"ln -s {beta_file} {alpha_uploads}/beta.txt",
            f"ln -s /etc/passwd {alpha_uploads}/passwd.txt",
            f"ln -s {Path(naming.root(alpha))}/shared/wp-config.php {alpha_uploads}/config.txt",
            f"echo 'alpha upload' > {alpha_uploads}/own.txt",
        ):
            planted = as_site(alpha, "sh", "-c", command)
            assert planted.returncode == 0, planted.stderr
        assert http_get(alpha.preview_url, "/wp-content/uploads/own.txt")[0] == 200
        for name, leak in (("beta.txt", "beta private"), ("passwd.txt", "root:x:"), ("config.txt", "DB_PASSWORD")):
            status, _, body, _ = http_get(alpha.preview_url, f"/wp-content/uploads/{name}")
            assert status != 200 and leak not in body, name
    finally:
        response = api_client.delete(f"/api/sites/{beta_site.id}")
        runner.run_job(response.json()["job_id"])


def _sql_as(environment, statement: str) -> str:
    """A statement with the environment's own database account, as its PHP could run it."""
    result = subprocess.run(
        ["mariadb", "--batch", "--skip-column-names", f"--user={naming.system_name(environment)}",
         naming.system_name(environment), "-e", statement],
        capture_output=True, text=True, env=dict(os.environ, MYSQL_PWD=environment.db_password),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_clone_keeps_no_trigger_that_runs_with_the_sources_account(api_client, site):
    """A trigger the site made runs with its definer's rights. Copied as it was,
    a trigger in the staging copy would act with production's account."""
    _, production = site
    _sql_as(production, "CREATE TABLE wp_pressluft_audit (note TEXT)")
    _sql_as(production, "CREATE TRIGGER wp_pressluft_spy AFTER INSERT ON wp_options FOR EACH ROW "
                        "INSERT INTO wp_pressluft_audit VALUES (NEW.option_name)")
    response = api_client.post(f"/api/sites/{production.site_id}/environments",
                               {"name": "Staging", "slug": "staging", "type": "staging", "promotion_preset": "content-protect"}, format="json")
    job_id = response.json()["job_id"]
    assert runner.run_job(job_id) == "succeeded", job_log(job_id)
    clone = Environment.objects.get(pk=Job.objects.get(pk=job_id).environment_id)
    definer = subprocess.run(
        ["mariadb", "--batch", "--skip-column-names", "-e",
         f"SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{naming.system_name(clone)}'"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert definer == f"{naming.system_name(clone)}@localhost"
