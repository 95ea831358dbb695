"""The job page's live log (static/pressluft/live-log.js) in a real browser:
it streams the lines a running job writes, follows its state, shows how it
ended and stops asking. The jobs are the test handlers, run here by the real
runner, so each test takes seconds and needs no node."""

import re

import pytest
from playwright.sync_api import expect

from apps.jobs import services
from apps.jobs.choices import CAN_CANCEL
from apps.jobs.models import Job, JobLogLine
from apps.jobs.runner import run_job
from tests.browser.support import expected_live_text, field_text, follow_job_to_its_end, log_in
from tests.conftest import PASSWORD
from tests.jobs.support import InThread

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def environment(node):
    from apps.environments.factories import EnvironmentFactory
    from apps.sites.factories import SiteFactory

    return EnvironmentFactory(site=SiteFactory(), node=node, slug="production")


def test_live_log_follows_a_running_job_until_it_is_cancelled(browser_page, staff_user, environment):
    page = browser_page.page
    job = services.enqueue_job("test_sleep", environment=environment, payload={"seconds": 60})
    log_in(page, staff_user.email, PASSWORD)
    page.goto(f"/admin/jobs/job/{job.pk}/change/")
    state = page.locator("#pressluft-live-log .pressluft-live-state")
    live_text = page.locator("#pressluft-live-log pre")
    expect(state).to_have_text("queued")

    run = InThread(run_job, str(job.pk))
    try:
        # The script, not the server's first render, shows the new state and the line.
        expect(state).to_have_text("running")
        expect(live_text).to_contain_text(re.compile(r"^\[info\] sleeping pid \d+$", re.M))
        # The job page's own button (an action form): back on the same page, still followed.
        page.get_by_role("button", name="Cancel job").click()
        expect(page.locator(".messagelist")).to_contain_text("asked to stop")
        snapshots = follow_job_to_its_end(page, timeout=20)
    finally:
        # Whatever went wrong above, the handler's thread must end.
        if Job.objects.get(pk=job.pk).status in CAN_CANCEL:
            services.cancel_job(job.pk)
        run.result(timeout=20)

    job.refresh_from_db()
    assert job.status == "cancelled"
    expect(field_text(page, "status_column")).to_have_text("Cancelled")
    assert snapshots[-1]["state"] == "cancelled", snapshots
    assert snapshots[-1]["text"] == expected_live_text(job, int(snapshots[0]["after"])), snapshots
    # The reloaded page shows the stored log (the inline) and asks nothing more.
    expect(page.locator(".pressluft-log")).to_contain_text("sleeping pid")
    asked = len([url for url in browser_page.requested if "/log-tail/" in url])
    page.wait_for_timeout(2500)
    assert len([url for url in browser_page.requested if "/log-tail/" in url]) == asked
    browser_page.assert_clean()


def test_live_log_shows_a_failed_job_with_its_error(browser_page, staff_user, environment):
    page = browser_page.page
    job = services.enqueue_job("test_fail", environment=environment,
                               payload={"code": "internal_error", "message": "failed on purpose"})
    JobLogLine.objects.create(job=job, seq=1, level="info", message="written before the page was opened")
    log_in(page, staff_user.email, PASSWORD)
    page.goto(f"/admin/jobs/job/{job.pk}/change/")
    expect(page.locator("#pressluft-live-log")).to_have_attribute("data-after", "1")

    run_job(str(job.pk))
    snapshots = follow_job_to_its_end(page, timeout=15)

    job.refresh_from_db()
    assert job.status == "failed"
    assert snapshots[-1]["state"] == "failed", snapshots
    # Only lines after the ones already on the page are appended.
    assert snapshots[-1]["text"] == expected_live_text(job, 1)
    assert "written before" not in snapshots[-1]["text"]
    expect(field_text(page, "status_column")).to_have_text("Failed")
    expect(field_text(page, "error_message")).to_have_text("failed on purpose")
    browser_page.assert_clean()


def test_live_log_says_so_when_signed_out(browser_page, staff_user, environment):
    page = browser_page.page
    job = services.enqueue_job("test_sleep", environment=environment, payload={"seconds": 60})
    log_in(page, staff_user.email, PASSWORD)
    page.goto(f"/admin/jobs/job/{job.pk}/change/")
    page.context.clear_cookies()
    # The admin answers the next poll with its login page: the script stops instead of retrying.
    expect(page.locator("#pressluft-live-log .pressluft-live-state")).to_have_text(
        "not signed in any more: reload the page")
    asked = len([url for url in browser_page.requested if "/log-tail/" in url])
    page.wait_for_timeout(2000)
    assert len([url for url in browser_page.requested if "/log-tail/" in url]) == asked
    assert Job.objects.get(pk=job.pk).status == "queued"
    browser_page.assert_clean()

