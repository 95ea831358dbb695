"""Updates on the real local node, against an update service on loopback:
core, a plugin and a theme updated by WordPress's own upgrader in a new
release and served; a plugin update that fatals on every page and a theme
update that empties the home page are rolled back by themselves; the
pre-update database backup is taken first."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import Client

from apps.accounts.factories import UserFactory
from apps.backups.models import Backup
from apps.environments import naming
from apps.jobs import runner
from apps.jobs.models import Job
from tests.sites.test_deploy_e2e import git, readable_directory
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log
from tests.updates.update_server import UpdateServer, core_package, zip_tree

pytestmark = pytest.mark.django_db(transaction=True)

PLUGIN_FILE = "pressluft-update-plugin/pressluft-update-plugin.php"
THEME = "pressluft-update-theme"


def plugin(version: str, body: str = "") -> str:
    return (f"<?php\n/*\nPlugin Name: Pressluft Update Plugin\nVersion: {version}\n*/\n"
            f"add_action('wp_footer', function () {{ echo '<p>update-plugin {version}</p>'; }});\n{body}")


# Fatal on every page it renders, not when WordPress loads (so it passes the
# check before the switch and is caught by the one after).
FATAL = "add_action('template_redirect', function () { pressluft_update_no_such_function(); });\n"
# What many plugins do on the first request after an update: migrate their
# own table and record their database version.
MIGRATES = ("add_action('init', function () { global $wpdb;\n"
            "    $wpdb->query(\"CREATE TABLE IF NOT EXISTS {$wpdb->prefix}pressluft_update_log (id INT PRIMARY KEY)\");\n"
            "    update_option('pressluft_update_plugin_db_version', '3'); });\n")


def database_rows(environment, query: str) -> list[str]:
    done = subprocess.run(["mariadb", "--batch", "--skip-column-names", "-e", query, naming.system_name(environment)],
                          capture_output=True, text=True, check=True)
    return done.stdout.split()


def theme_files(version: str, with_content: bool = True) -> dict[str, str]:
    loop = ("<?php while (have_posts()) { the_post(); echo '<article><h2>' . esc_html(get_the_title()) . '</h2>' . "
            "apply_filters('the_content', get_the_content()) . '</article>'; } ?>") if with_content else ""
    return {
        "style.css": f"/*\nTheme Name: Pressluft Update Theme\nVersion: {version}\n*/\n",
        "index.php": ("<!doctype html><html><head><title><?php echo esc_html(get_bloginfo('name')); ?></title>"
                      "<?php wp_head(); ?></head><body><main>" + loop +
                      f"<p>update-theme {version}</p></main><?php wp_footer(); ?></body></html>\n"),
    }


ACTIVATE = (
    "<?php\n"
    f"add_filter('pre_option_stylesheet', function () {{ return '{THEME}'; }});\n"
    f"add_filter('pre_option_template', function () {{ return '{THEME}'; }});\n"
    "add_filter('option_active_plugins', function ($plugins) {\n"
    f"    return array_values(array_unique(array_merge((array) $plugins, ['{PLUGIN_FILE}'])));\n"
    "});\n"
)


@pytest.fixture
def site_repository():
    """A wp-content tree: the test plugin and theme at 1.0, and a must-use plugin activating both."""
    parent = readable_directory("pressluft-test-update-repo-")
    repo = parent / "site.git"
    files = {f"plugins/{PLUGIN_FILE}": plugin("1.0"), "mu-plugins/activate-update-test.php": ACTIVATE}
    files.update({f"themes/{THEME}/{name}": content for name, content in theme_files("1.0").items()})
    for name, content in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(content)
    git(parent, "init", "--quiet", "-b", "main", str(repo))
    git(repo, "config", "user.email", "ci@example.test")
    git(repo, "config", "user.name", "CI")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "site")
    yield repo
    shutil.rmtree(parent)


def wp_helper(environment, request: dict) -> dict:
    """The node's WordPress helper, run here as the environment's user."""
    result = subprocess.run(
        ["runuser", "-u", naming.system_name(environment), "--", "php",
         str(Path(django_settings.NODE_LIB_DIR) / "pressluft-wp.php")],
        input=json.dumps({"root": naming.root(environment), "url": environment.preview_url, **request}),
        capture_output=True, text=True, check=True, cwd="/",
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def update(api_client, environment, scope: str) -> Job:
    response = api_client.post(f"/api/environments/{environment.pk}/updates", {"scope": scope}, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job_id"]
    runner.run_job(job_id)
    return Job.objects.get(pk=job_id)


def test_updates_are_installed_and_broken_ones_rolled_back(api_client, local_node, backup_storage, settings,
                                                          site_repository):
    with UpdateServer() as server:
        settings.WORDPRESS_UPDATE_API = server.base
        site, production = create_site(api_client, "Lambda Lamps", "lambda")
        try:
            _updates(api_client, site, production, server, site_repository)
        finally:
            response = api_client.delete(f"/api/sites/{site.id}")
            if response.status_code == 202:
                runner.run_job(response.json()["job_id"])


def _updates(api_client, site, production, server, repository):
    response = api_client.post(f"/api/environments/{production.id}/deploy",
                               {"source_type": "git", "source_ref": f"{repository}#main"}, format="json")
    assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "update-plugin 1.0" in body and "update-theme 1.0" in body and "Hello world!" in body

    # Nothing offered: nothing to do, and no backup taken for it.
    job = update(api_client, production, "all")
    assert job.status == "succeeded", job_log(job.pk)
    assert job.result["updated"] == [] and not Backup.objects.filter(environment=production).exists()

    # Core (the installed WordPress with a bumped version and database version), the plugin and the theme.
    source = Path("/usr/share/wordpress")
    installed_db_version = int(wp_helper(production, {"command": "option-get", "name": "db_version"})["value"])
    server.packages["core.zip"] = core_package(source, "6.1.90", db_version=installed_db_version + 1)
    server.packages["plugin-2.zip"] = zip_tree({f"pressluft-update-plugin/{PLUGIN_FILE.split('/')[1]}": plugin("2.0")})
    server.packages["theme-2.zip"] = zip_tree({f"{THEME}/{name}": content
                                               for name, content in theme_files("2.0").items()})
    server.core = {"version": "6.1.90", "package": "core.zip"}
    server.plugins[PLUGIN_FILE] = {"version": "2.0", "package": "plugin-2.zip"}
    server.themes[THEME] = {"version": "2.0", "package": "theme-2.zip"}

    # The API says the same as the node's check (no package URLs), and so does the admin's Updates page.
    offer = api_client.get(f"/api/environments/{production.pk}/updates").json()
    assert offer["core"] == {"installed": "6.1.9", "available": "6.1.90"}
    assert [(p["file"], p["installed"], p["available"], p["active"]) for p in offer["plugins"]] == [
        (PLUGIN_FILE, "1.0", "2.0", True)]
    assert [(t["stylesheet"], t["available"]) for t in offer["themes"]] == [(THEME, "2.0")]
    assert "package" not in str(offer)

    # The admin's Updates page asks the node what is offered: installed -> available, and the buttons.
    admin = Client()
    admin.force_login(UserFactory(email="root@example.test", is_staff=True, is_superuser=True))
    page = admin.get(f"/admin/environments/environment/{production.pk}/updates/").content.decode()
    for shown in ("Pressluft Update Plugin", "Pressluft Update Theme", "6.1.9 → 6.1.90", "1.0 → 2.0",
                  "Update all (3)", "Update core (1)", "Update plugins (1)", "Update themes (1)"):
        assert shown in page, shown

    production.refresh_from_db()
    before = production.current_release
    job = update(api_client, production, "all")
    log = job_log(job.pk)
    assert job.status == "succeeded", log
    updated = {(c["type"], c["to"]) for c in job.result["updated"]}
    assert updated == {("core", "6.1.90"), ("plugin", "2.0"), ("theme", "2.0")}, log
    assert "plugin Pressluft Update Plugin 1.0 → 2.0" in log and "theme Pressluft Update Theme 1.0 → 2.0" in log
    assert "core WordPress 6.1.9 → 6.1.90" in log
    backup = Backup.objects.get(pk=job.result["backup_id"])
    assert (backup.backup_scope, backup.status, backup.reason) == ("db", "completed", "pre_update")
    assert job.result["database"]["changed"] is True
    production.refresh_from_db()
    new = production.current_release
    assert new != before and new.source_type == "update" and new.health == "healthy"
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "update-plugin 2.0" in body and "update-theme 2.0" in body and "Hello world!" in body
    assert 'content="WordPress 6.1.90"' in body
    assert int(wp_helper(production, {"command": "option-get", "name": "db_version"})["value"]) == installed_db_version + 1
    # The new release is root's and read-only like every release; the old one is unchanged.
    releases = Path(naming.root(production)) / "releases"
    changed = releases / new.directory / "wp-content" / "plugins" / PLUGIN_FILE
    assert changed.stat().st_uid == 0 and not changed.stat().st_mode & 0o022
    assert "Version: 1.0" in (releases / before.directory / "wp-content" / "plugins" / PLUGIN_FILE).read_text()
    assert "6.1.9'" in (releases / before.directory / "wp-includes" / "version.php").read_text()
    assert all(os.stat(path).st_uid == 0 for path in (releases / new.directory).rglob("*") if not path.is_symlink())
    assert not (releases / new.directory / ".maintenance").exists()

    # A plugin update that migrates its table on the first request, then fatals on every page: switched to,
    # found broken, rolled back, and as it changed the database, the pre-update database comes back too.
    server.core = None
    server.themes.clear()
    server.packages["plugin-3.zip"] = zip_tree({f"pressluft-update-plugin/{PLUGIN_FILE.split('/')[1]}":
                                                plugin("3.0", MIGRATES + FATAL)})
    server.plugins[PLUGIN_FILE] = {"version": "3.0", "package": "plugin-3.zip"}
    job = update(api_client, production, "plugins")
    log = job_log(job.pk)
    assert (job.status, job.error_code) == ("failed", "update_rolled_back"), log
    assert "rolled back" in job.error_message
    assert "plugin Pressluft Update Plugin 2.0 → 3.0" in log and "broke" in log
    assert "the update changed the database: table wp_pressluft_update_log created" in log
    assert "option pressluft_update_plugin_db_version (none) → 3" in log
    assert "and the pre-update database" in job.error_message
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == new
    assert production.releases.get(directory=job.result["release"]).health == "unhealthy"
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "update-plugin 2.0" in body
    assert database_rows(production, "SHOW TABLES LIKE 'wp\\_pressluft\\_update\\_log'") == []
    assert database_rows(production, "SELECT COUNT(*) FROM wp_options "
                                     "WHERE option_name = 'pressluft_update_plugin_db_version'") == ["0"]

    # A theme update that wipes the home page's content (the page still answers 200): rolled back.
    server.plugins.clear()
    server.packages["theme-3.zip"] = zip_tree({f"{THEME}/{name}": content
                                               for name, content in theme_files("3.0", with_content=False).items()})
    server.themes[THEME] = {"version": "3.0", "package": "theme-3.zip"}
    call_command_failed = None
    try:
        call_command("update_environment", site.slug, production.slug, "--scope", "themes", "--wait")
    except Exception as exc:  # CommandError: the job failed
        call_command_failed = str(exc)
    job = Job.objects.filter(job_type="env_update").order_by("-created_at").first()
    log = job_log(job.pk)
    assert call_command_failed and "update_rolled_back" in call_command_failed, log
    assert "lost most of its content" in log and "theme Pressluft Update Theme 2.0 → 3.0" in log
    # The theme left the database alone: it is kept (nothing written since the update is lost).
    assert "left the database's tables and version options alone" in log
    assert "restore the pre-update database" not in log
    production.refresh_from_db()
    assert production.current_release == new
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "update-theme 2.0" in body and "Hello world!" in body

    # A plugin package holding a link that leads out of it: refused before anything is built.
    server.themes.clear()
    server.packages["plugin-4.zip"] = zip_tree({f"pressluft-update-plugin/{PLUGIN_FILE.split('/')[1]}": plugin("4.0")},
                                               links={"pressluft-update-plugin/shadow.txt": "../../../../../etc/shadow"})
    server.plugins[PLUGIN_FILE] = {"version": "4.0", "package": "plugin-4.zip"}
    job = update(api_client, production, "plugins")
    assert (job.status, job.error_code) == ("failed", "update_package_invalid"), job_log(job.pk)
    assert "shadow.txt" in job.error_message and "leads outside" in job.error_message
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == new
    assert not [p for p in releases.iterdir() if p.name.startswith(".")]  # no half-built release left

    # A plugin update that migrates the database as soon as it is loaded and then fatals: WordPress cannot
    # load from the new release, nothing is switched, and what it did to the live database is undone.
    # The site has a view (made by its own account), which the update replaces: the rollback brings it back
    # (no view moves to another database: created again in live by the site's account).
    name = naming.system_name(production)
    subprocess.run(["runuser", "-u", name, "--", "mariadb", f"--user={name}", f"--password={production.db_password}",
                    name], input=b"CREATE VIEW wp_pl_recent AS SELECT ID, post_title FROM wp_posts;\n", check=True,
                   cwd="/")
    view_before = database_rows(production, "SELECT HEX(VIEW_DEFINITION), DEFINER FROM information_schema.VIEWS "
                                            f"WHERE TABLE_SCHEMA = '{name}'")
    assert len(view_before) == 2 and view_before[1] == f"{name}@localhost"
    server.packages["plugin-5.zip"] = zip_tree({f"pressluft-update-plugin/{PLUGIN_FILE.split('/')[1]}": plugin(
        "5.0", "update_option('pressluft_update_plugin_db_version', '5');\n"
        "$GLOBALS['wpdb']->query('CREATE OR REPLACE VIEW wp_pl_recent AS SELECT ID FROM wp_posts');\n"
        "pressluft_update_no_such_function();\n")})
    server.plugins[PLUGIN_FILE] = {"version": "5.0", "package": "plugin-5.zip"}
    job = update(api_client, production, "plugins")
    log = job_log(job.pk)
    assert job.status == "failed" and job.error_code in ("update_failed", "wordpress_failed"), log
    assert "option pressluft_update_plugin_db_version (none) → 5" in log
    assert "restored from the pre-update backup" in job.error_message
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == new
    assert database_rows(production, "SELECT COUNT(*) FROM wp_options "
                                     "WHERE option_name = 'pressluft_update_plugin_db_version'") == ["0"]
    assert database_rows(production, "SELECT HEX(VIEW_DEFINITION), DEFINER FROM information_schema.VIEWS "
                                     f"WHERE TABLE_SCHEMA = '{name}'") == view_before
    assert "Hello" in database_rows(production, "SELECT post_title FROM wp_pl_recent")

    # A core update whose pages fatal after its database upgrade: code and database both go back.
    server.plugins.clear()
    server.packages["core-broken.zip"] = core_package(source, "6.1.91", db_version=installed_db_version + 2,
                                                      broken_pages=True)
    server.core = {"version": "6.1.91", "package": "core-broken.zip"}
    job = update(api_client, production, "core")
    log = job_log(job.pk)
    assert (job.status, job.error_code) == ("failed", "update_rolled_back"), log
    assert job.result["database"]["changed"] is True
    assert "core WordPress 6.1.90 → 6.1.91" in log and "restore the pre-update database" in log
    assert "and the pre-update database" in job.error_message
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == new
    assert int(wp_helper(production, {"command": "option-get", "name": "db_version"})["value"]) == installed_db_version + 1
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and 'content="WordPress 6.1.90"' in body and "update-plugin 2.0" in body

    # The site's own code runs in WordPress during the update: it tries to write into a file the new release
    # shares with the live one, plants a link to a file outside and hard-links a file of its uploads. The write
    # fails (the file is root's); the links are found when the release is taken back; nothing is switched.
    planted = (repository / "mu-plugins" / "plant.php")
    planted.write_text("<?php\nadd_action('upgrader_process_complete', function () {\n"
                       "    @file_put_contents(ABSPATH . 'wp-includes/version.php', \"\\n// planted\", FILE_APPEND);\n"
                       "    @symlink('/etc/passwd', ABSPATH . 'leak.txt');\n"
                       "    file_put_contents(WP_CONTENT_DIR . '/uploads/mine.php', '<?php echo 1;');\n"
                       "    @link(WP_CONTENT_DIR . '/uploads/mine.php', ABSPATH . 'planted.php');\n});\n")
    git(repository, "add", "-A")
    git(repository, "commit", "--quiet", "-m", "plant")  # the deploy brings the repository's plugin 1.0 back
    response = api_client.post(f"/api/environments/{production.id}/deploy",
                               {"source_type": "git", "source_ref": f"{repository}#main"}, format="json")
    assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
    production.refresh_from_db()
    live = production.current_release
    server.core = None
    server.packages["plugin-5.zip"] = zip_tree({f"pressluft-update-plugin/{PLUGIN_FILE.split('/')[1]}": plugin("5.0")})
    server.plugins[PLUGIN_FILE] = {"version": "5.0", "package": "plugin-5.zip"}
    job = update(api_client, production, "plugins")
    assert (job.status, job.error_code) == ("failed", "update_package_invalid"), job_log(job.pk)
    assert "leak.txt" in job.error_message and "'planted.php': a hard link to a file outside" in job.error_message
    production.refresh_from_db()
    assert production.status == "active" and production.current_release == live
    assert "planted" not in (releases / live.directory / "wp-includes" / "version.php").read_text()
    assert not [p for p in releases.iterdir() if p.name.startswith(".") or p.name == job.payload["release"]]
    status, _, body, _ = http_get(production.preview_url)
    assert status == 200 and "update-plugin 1.0" in body  # as the deploy brought it back
