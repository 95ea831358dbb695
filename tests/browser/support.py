"""A real panel process, Debian's Chromium driven by Playwright, and what the
browser tests check on every page: no JavaScript error, no failed request.

The panel is gunicorn serving the test database (the one pytest-django made),
with the test process's secret key and data directory, so sessions it issues
and secrets the tests stored are the panel's own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings

from tests.jobs.support import REPO_DIR, database_url_of_tests
from tests.nodes.support import free_port

CHROMIUM = "/usr/bin/chromium"
# shared/TESTING.md's flags. The sites the panel creates are named
# <id>.127-0-0-1.sslip.io; this machine has no DNS, so the browser is told
# where they are (the node's Nginx on loopback) instead.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--host-resolver-rules=MAP *.sslip.io 127.0.0.1",
]
# Hosts whose requests are the page's own: the panel and the sites on this
# machine. Anything else (a gravatar in wp-admin's toolbar) cannot be reached
# from here; its failures are recorded but do not fail a test.
OWN_HOST_SUFFIXES = (".sslip.io",)


def panel_environment(database_url: str) -> dict:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pressluft.settings_test",
        "DATABASE_URL": database_url,
        "PRESSLUFT_SECRET_KEY": settings.SECRET_KEY,
        "PRESSLUFT_DATA_DIR": str(settings.DATA_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    # Set in this process only while Playwright's loop runs (see conftest.py).
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


class PanelServer:
    """gunicorn on a free loopback port, in its own session (stopped with its workers)."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.log_dir / "panel.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "PanelServer":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = panel_environment(database_url_of_tests())
        # Whitenoise serves what collectstatic gathered (as scripts/run does).
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
                       cwd=REPO_DIR, env=env, check=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "gunicorn"), "pressluft.wsgi:application",
                 "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--timeout", "60",
                 "--access-logfile", "-", "--error-logfile", "-", "--capture-output"],
                cwd=REPO_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self._wait_until_answering()
        return self

    def _wait_until_answering(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the panel exited ({self.process.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/admin/login/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the panel did not answer within {timeout} s:\n{self.tail()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None:
            return
        for signum, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process = None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def is_own(url: str, panel_url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    if f"{parts.scheme}://{parts.netloc}" == panel_url:
        return True
    return (parts.hostname or "").endswith(OWN_HOST_SUFFIXES)


class PageWatch:
    """Collects what went wrong in a page: console errors, uncaught
    exceptions, failed requests and error answers to the page's own requests."""

    def __init__(self, page, panel_url: str, artifacts_dir: Path):
        self.page = page
        self.panel_url = panel_url
        self.artifacts_dir = Path(artifacts_dir)
        self.problems: list[str] = []
        self.foreign: list[str] = []
        self.requested: list[str] = []
        page.on("request", lambda request: self.requested.append(request.url))
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught JavaScript error on {page.url}: {error}"))
        page.on("requestfailed", self._request_failed)
        page.on("response", self._response)

    def _console(self, message):
        if message.type != "error":
            return
        where = message.location.get("url", "") if message.location else ""
        text = f"console error on {self.page.url}: {message.text} ({where})"
        if message.text.startswith("Failed to load resource") and where:
            # Chromium reports a failed load as a console error too; a foreign one is not ours.
            if not is_own(where, self.panel_url):
                self.foreign.append(text)
                return
            # The browser asks for /favicon.ico by itself (no page asks for it); the panel has none.
            if urlsplit(where).path == "/favicon.ico":
                return
        self.problems.append(text)

    def _request_failed(self, request):
        failure = request.failure or ""
        text = f"request failed: {request.method} {request.url}: {failure}"
        if not is_own(request.url, self.panel_url):
            self.foreign.append(text)
        elif "ERR_ABORTED" in failure:
            # The page navigated away (a click, the live log's reload) while
            # this request was in flight: the browser cancels it, nothing failed.
            return
        else:
            self.problems.append(text)

    def _response(self, response):
        if response.status >= 400 and is_own(response.url, self.panel_url):
            self.problems.append(f"HTTP {response.status} for {response.request.method} {response.url}")

    def assert_clean(self) -> None:
        assert not self.problems, "problems in the browser:\n" + "\n".join(self.problems)

    def save_artifacts(self) -> Path:
        """A screenshot and the HTML of the page as it is now, and what was recorded."""
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.page.screenshot(path=str(self.artifacts_dir / "page.png"), full_page=True)
            (self.artifacts_dir / "page.html").write_text(self.page.content())
        except Exception as exc:  # noqa: BLE001 - a closed or crashed page still gets its notes
            (self.artifacts_dir / "page-error.txt").write_text(repr(exc))
        (self.artifacts_dir / "problems.txt").write_text(
            f"url: {self.page.url}\n\nproblems:\n" + "\n".join(self.problems)
            + "\n\nforeign (not failing):\n" + "\n".join(self.foreign) + "\n"
        )
        return self.artifacts_dir


# Runs in every page before its own scripts: records what the live log box
# shows after each change (state and streamed text), in sessionStorage so it
# survives the reload live-log.js does when the job ends.
LIVE_LOG_RECORDER = """
(() => {
  const KEY = "pressluft-test-live-log";
  function record() {
    const box = document.getElementById("pressluft-live-log");
    if (!box) { return; }
    const state = box.querySelector(".pressluft-live-state");
    const pre = box.querySelector("pre");
    if (!state || !pre) { return; }
    const seen = JSON.parse(sessionStorage.getItem(KEY) || "[]");
    const snap = {path: location.pathname, load: performance.timeOrigin, after: box.dataset.after,
                  state: state.textContent, text: pre.textContent};
    const last = seen[seen.length - 1];
    if (last && last.load === snap.load && last.state === snap.state && last.text === snap.text) { return; }
    seen.push(snap);
    sessionStorage.setItem(KEY, JSON.stringify(seen));
  }
  new MutationObserver(record).observe(document, {subtree: true, childList: true, characterData: true});
})();
"""


def live_log_snapshots(page, path: str) -> list[dict]:
    """What the live log on ``path`` showed, one snapshot a change, from the
    last load of that page that had a live log (an action posted from the page
    loads it anew)."""
    seen = [snap for snap in json.loads(page.evaluate("sessionStorage.getItem('pressluft-test-live-log') || '[]'"))
            if snap["path"] == path]
    return [snap for snap in seen if snap["load"] == seen[-1]["load"]] if seen else []


def log_in(page, email: str, password: str) -> None:
    """Through the admin's login form, as an operator would."""
    from playwright.sync_api import expect

    page.goto("/admin/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def field_text(page, field: str):
    """The locator of a read-only field's value on an admin object page."""
    return page.locator(f".field-{field} .readonly")


def follow_job_to_its_end(page, timeout: float) -> list[dict]:
    """On a job's page while it runs: wait until live-log.js has seen the job
    end and reloaded the page, and return what the live log showed over time."""
    from playwright.sync_api import expect

    path = urlsplit(page.url).path
    expect(page.locator("#pressluft-live-log")).to_have_count(1)
    expect(page.locator("#pressluft-live-log")).to_have_count(0, timeout=timeout * 1000)
    page.wait_for_load_state("load")
    return live_log_snapshots(page, path)


def expected_live_text(job, after: int) -> str:
    """The text live-log.js appends for the job's lines after ``after``."""
    lines = job.log_lines.filter(seq__gt=after).order_by("seq")
    return "".join(f"[{line.level}] {line.message}\n" for line in lines)
