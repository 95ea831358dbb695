"""Updates: what an update changed, and whether the site still looks like
itself afterwards (the pages compared before and after), and which updated
component a problem points at. Pure logic; the job (jobs.env_update) fetches
the pages and the node program (remote/env_update.py) does the update."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

SCOPES = ("core", "plugins", "themes", "all")
SCOPE_TYPES = {"core": {"core"}, "plugins": {"plugin"}, "themes": {"theme"}, "all": {"core", "plugin", "theme"}}
# A page "lost most of its content" when less than this share of its text is left...
CONTENT_KEPT_AT_LEAST = 0.5
# ... counted only for pages that had this much text to lose.
CONTENT_WORTH_COMPARING = 80


def available_updates(offer: dict, scope: str = "all") -> list[dict]:
    """The components with a newer version on offer, as {type, key, name, from, to} (node check's answer)."""
    types = SCOPE_TYPES[scope]
    found = []
    core = offer.get("core") or {}
    if "core" in types and core.get("available"):
        found.append({"type": "core", "key": "core", "name": "WordPress", "from": core.get("installed"),
                      "to": core["available"]})
    for kind, key, name in (("plugins", "file", "plugin"), ("themes", "stylesheet", "theme")):
        if name not in types:
            continue
        for row in offer.get(kind) or []:
            if row.get("available") and row["available"] != row.get("installed"):
                found.append({"type": name, "key": row[key], "name": row.get("name") or row[key],
                              "from": row.get("installed"), "to": row["available"]})
    return found


def database_changes(before: dict | None, after: dict | None) -> list[str]:
    """What an update changed in the database, from the node's fingerprints
    (env_update.py ``database_fingerprint``) before the switch and now:
    tables added, removed or restructured, version options set or changed."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return []
    changes = []
    old_tables, new_tables = before.get("tables") or {}, after.get("tables") or {}
    for table in sorted(set(old_tables) | set(new_tables)):
        if table not in old_tables:
            changes.append(f"table {table} created")
        elif table not in new_tables:
            changes.append(f"table {table} removed")
        elif old_tables[table] != new_tables[table]:
            changes.append(f"table {table} restructured")
    old_versions, new_versions = before.get("versions") or {}, after.get("versions") or {}
    for option in sorted(set(old_versions) | set(new_versions)):
        if old_versions.get(option) != new_versions.get(option):
            changes.append(f"option {option} {old_versions.get(option, '(none)')} → {new_versions.get(option, '(none)')}")
    return changes


def describe(component: dict) -> str:
    return f"{component['type']} {component['name']} {component['from'] or '?'} → {component['to']}"


def pages_to_compare(latest_post_url: str | None) -> list[tuple[str, str]]:
    """(label, path): the home page, the latest post (when there is one) and the login page."""
    pages = [("home page", "/")]
    if latest_post_url:
        parts = urlsplit(latest_post_url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if path != "/":
            pages.append(("latest post", path))
    pages.append(("login page", "/wp-login.php"))
    return pages


@dataclass
class Page:
    label: str
    path: str
    status: int | None
    title: str
    text: str
    error: str = ""

    def as_dict(self) -> dict:
        return {"label": self.label, "path": self.path, "status": self.status, "title": self.title,
                "text_length": len(self.text), "error": self.error}


class _PageText(HTMLParser):
    """The title and the visible text of a page (of <main> when it has one)."""

    SKIPPED = {"script", "style", "noscript", "template", "svg"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.body: list[str] = []
        self.main: list[str] = []
        self._stack: list[str] = []
        self._skip = 0
        self._in_main = 0
        self.has_main = False

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIPPED:
            self._skip += 1
        if tag == "main":
            self._in_main += 1
            self.has_main = True
        self._stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.SKIPPED and self._skip:
            self._skip -= 1
        if tag == "main" and self._in_main:
            self._in_main -= 1
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def handle_data(self, data):
        if self._stack and self._stack[-1] == "title":
            self.title.append(data)
            return
        if self._skip:
            return
        self.body.append(data)
        if self._in_main:
            self.main.append(data)


def _squeeze(parts: list[str]) -> str:
    return re.sub(r"\s+", " ", " ".join(parts)).strip()


def read_page(label: str, path: str, status: int | None, body: bytes, error: str = "") -> Page:
    parser = _PageText()
    try:
        parser.feed(body.decode("utf-8", errors="replace"))
        parser.close()
    except Exception:  # noqa: BLE001 - a page that cannot be parsed has no text to compare
        pass
    text = _squeeze(parser.main if parser.has_main else parser.body)
    return Page(label, path, status, _squeeze(parser.title)[:200], text, error)


def compare(before: Page, after: Page) -> tuple[list[str], list[str]]:
    """(problems, notes): a page that broke or lost most of its content is a
    problem; a changed title or a smaller change is a note."""
    problems, notes = [], []
    name = f"{before.label} ({before.path})"
    if before.status is not None and before.status < 400 and (after.status is None or after.status >= 400):
        shown = after.error or f"answered {after.status}"
        problems.append(f"{name} broke: {shown} (was {before.status})")
        return problems, notes
    if before.status != after.status:
        notes.append(f"{name} answers {after.status} (was {before.status})")
    if before.title and not after.title:
        problems.append(f"{name} lost its title (was {before.title!r})")
    elif before.title != after.title:
        notes.append(f"{name} title changed: {before.title!r} → {after.title!r}")
    if len(before.text) >= CONTENT_WORTH_COMPARING and len(after.text) < CONTENT_KEPT_AT_LEAST * len(before.text):
        problems.append(f"{name} lost most of its content ({len(before.text)} → {len(after.text)} characters of text)")
    elif len(before.text) != len(after.text):
        notes.append(f"{name} text {len(before.text)} → {len(after.text)} characters")
    return problems, notes


_COMPONENT_PATH = re.compile(r"/wp-content/(plugins|themes)/([^/\s]+)/")
_CORE_PATH = re.compile(r"/(wp-includes|wp-admin)/")


def blame(problem: str, updated: list[dict]) -> str:
    """``problem`` with the updated component it points at (by the file a PHP
    error names), or the whole list of what this update changed."""
    match = _COMPONENT_PATH.search(problem)
    if match:
        kind = "plugin" if match.group(1) == "plugins" else "theme"
        for component in updated:
            key = component["key"].split("/", 1)[0] if kind == "plugin" else component["key"]
            if component["type"] == kind and key == match.group(2):
                return f"{describe(component)} broke it: {problem}"
    elif _CORE_PATH.search(problem):
        for component in updated:
            if component["type"] == "core":
                return f"{describe(component)} broke it: {problem}"
    changed = ", ".join(describe(component) for component in updated) or "nothing"
    return f"{problem} (after updating {changed})"
