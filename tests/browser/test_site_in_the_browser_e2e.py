"""End to end in Chromium against a real panel process, a real worker and the
real local node: an operator logs in, creates a site with the admin's form,
watches its job stream to the end, opens WordPress admin with the magic-login
button, clones the environment and follows that job too."""

import re

import pytest
from playwright.sync_api import expect

from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.models import Job
from apps.sites.models import Site
from tests.browser.support import expected_live_text, field_text, follow_job_to_its_end, log_in
from tests.conftest import PASSWORD
from tests.jobs.support import WorkerProcesses, database_url_of_tests
from tests.nodes.support import job_log

pytestmark = pytest.mark.django_db(transaction=True)

SLUG = "browser"
# Seconds a job may take here: site_create installs WordPress, env_create copies it.
JOB_TIMEOUT = 240


@pytest.fixture
def worker(local_node, tmp_path):
    """One real ``runworker`` (django-q2 cluster plus sweeper) on the test database."""
    workers = WorkerProcesses(tmp_path / "worker", database_url_of_tests(), 1, {})
    workers.start()
    yield workers
    workers.stop()


@pytest.fixture
def cleanup_site(api_client):
    yield
    site = Site.objects.filter(slug=SLUG).first()
    if site is not None:
        response = api_client.delete(f"/api/sites/{site.id}")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])


def watch_job(browser_page, job_type: str) -> Job:
    """On the page of the job just queued: follow it to its end, check what
    the live log showed on the way, and return the job."""
    page = browser_page.page
    job_id = re.search(r"/admin/jobs/job/([0-9a-f-]+)/change/", page.url).group(1)
    job = Job.objects.get(pk=job_id)
    assert job.job_type == job_type
    snapshots = follow_job_to_its_end(page, timeout=JOB_TIMEOUT)
    job.refresh_from_db()
    assert job.status == "succeeded", job_log(job.pk)
    assert snapshots, "the live log never showed anything"
    states = [snap["state"] for snap in snapshots]
    assert "running" in states and states[-1] == "succeeded", states
    # Every line after those on the first render was appended, in order, once.
    assert snapshots[-1]["text"] == expected_live_text(job, int(snapshots[0]["after"])), snapshots
    # ... and while the job ran, not all at the end. A fast job (a clone takes
    # a few seconds) may end between two polls, so one poll that appended
    # lines while the state was still running is the evidence.
    while_running = {snap["text"] for snap in snapshots if snap["state"] == "running" and snap["text"]}
    assert while_running, snapshots
    expect(field_text(page, "status_column")).to_have_text("Succeeded")
    browser_page.assert_clean()
    return job


def test_operator_creates_a_site_opens_wordpress_and_clones_it(browser_page, staff_user, worker, cleanup_site):
    page = browser_page.page
    log_in(page, staff_user.email, PASSWORD)

    # Add a site with the admin's form; it leads to the site_create job.
    page.goto("/admin/sites/site/")
    page.get_by_role("link", name="Add site").click()
    page.get_by_label("Name").fill("Browser Bistro")
    page.get_by_label("Slug").fill(SLUG)
    page.get_by_role("button", name="Create site").click()
    expect(page.locator(".messagelist")).to_contain_text("is being created on node local")
    watch_job(browser_page, "site_create")
    site = Site.objects.get(slug=SLUG)
    production = site.environments.get(environment_type="production")
    assert (site.status, production.status) == ("active", "active")

    # WordPress admin through the environment's magic-login button.
    page.get_by_role("link", name=str(production), exact=True).click()
    page.get_by_role("button", name="Open WordPress admin").click()
    page.wait_for_url(re.compile(r"^http://[0-9a-f]{8}\.127-0-0-1\.sslip\.io/wp-admin/"))
    assert page.url.startswith(production.preview_url)
    expect(page.locator("#wpadminbar")).to_be_visible()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    browser_page.assert_clean()

    # Clone production from its page; the clone's job is followed the same way.
    page.go_back()
    page.get_by_role("button", name="Clone environment").click()
    page.get_by_label("Name").fill("Staging")
    page.get_by_label("Slug").fill("staging")
    page.get_by_label("Type").select_option(label="Staging")
    page.get_by_role("button", name="Clone", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("copy queued as")
    watch_job(browser_page, "env_create")
    staging = Environment.objects.get(site=site, slug="staging")
    assert staging.status == "active"
    assert staging.source_environment_id == production.id
