"""Fixtures of the browser tests: one Chromium and one panel process for all
of them, a fresh browser context (cookies, storage) for each test.

The browser and the panel live as long as this package's tests run, not the
whole session: Playwright's synchronous API keeps an asyncio loop running in
this thread, and while it does Django refuses ORM calls here unless
DJANGO_ALLOW_ASYNC_UNSAFE is set. The variable is set only for that time, so
the rest of the suite keeps Django's check.
"""

import os
import re
import time

import pytest

from tests.browser.support import LIVE_LOG_RECORDER, PageWatch, PanelServer, launch_chromium
from tests.jobs.support import REPO_DIR
from tests.nodes.fixtures import *  # noqa: F401,F403


@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import sync_playwright

    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture(scope="package")
def panel(django_db_setup, tmp_path_factory):
    """The panel as gunicorn on a loopback port, serving the test database."""
    server = PanelServer(tmp_path_factory.mktemp("panel")).start()
    yield server
    server.stop()


def artifacts_dir(request):
    """Where a failing test's screenshot and HTML go: var/ of the work tree,
    which outlives pytest's tmp directories (several runs share and prune those)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:80]
    return REPO_DIR / "var" / "browser-failures" / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"


@pytest.fixture
def browser_page(request, browser, panel):
    """A new tab in a context of its own, watched for JavaScript errors and
    failed requests; a failing test leaves a screenshot and the page's HTML."""
    context = browser.new_context(base_url=panel.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    context.add_init_script(LIVE_LOG_RECORDER)
    page = context.new_page()
    watch = PageWatch(page, panel.url, artifacts_dir(request))
    request.node.browser_watch = watch
    request.node.browser_panel = panel
    yield watch
    try:
        if watch.problems and not getattr(request.node, "browser_failed", False):
            where = watch.save_artifacts()
            pytest.fail("problems in the browser (screenshot and HTML in "
                        f"{where}):\n" + "\n".join(watch.problems))
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    watch = getattr(item, "browser_watch", None)
    if watch is None or report.when != "call" or not report.failed:
        return
    item.browser_failed = True
    where = watch.save_artifacts()
    report.sections.append(("browser", f"screenshot, HTML and recorded problems saved in {where}\n"
                                       f"last page: {watch.page.url}"))
    report.sections.append(("panel log (last lines)", item.browser_panel.tail(25)))
