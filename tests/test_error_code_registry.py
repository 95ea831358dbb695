"""Every error code the code base can raise is registered and documented."""

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings

from apps.core.errors import API_ERROR_CODES, ApiError, json_error
from apps.jobs.errors import JOB_ERROR_CODES, JobError

REPO = Path(settings.BASE_DIR)
DOC = (REPO / "docs" / "error-codes.md").read_text()


def raised_codes(callables: dict[str, int]) -> dict[str, list[str]]:
    """Literal code arguments (at the given position, or code= / error_code=) of
    calls to the given names, across apps/ and pressluft/."""
    found: dict[str, list[str]] = {}
    for path in sorted((REPO / "apps").rglob("*.py")) + sorted((REPO / "pressluft").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name not in callables:
                continue
            position = callables[name]
            candidates = [node.args[position]] if len(node.args) > position else []
            candidates += [kw.value for kw in node.keywords if kw.arg in ("code", "error_code")]
            for arg in candidates:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, []).append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_every_api_error_code_raised_is_registered():
    codes = raised_codes({"ApiError": 0})
    assert codes, "the scan found no ApiError calls at all"
    unknown = {code: where for code, where in codes.items() if code not in API_ERROR_CODES}
    assert unknown == {}


def test_every_json_error_code_is_registered():
    codes = raised_codes({"json_error": 1})
    assert {code for code in codes if code not in API_ERROR_CODES} == set()


def test_every_job_error_code_raised_is_registered():
    # NodeError: raised by node-side programs, reported back as job errors.
    # end_run: error_code= is keyword-only (the position is past its two positional arguments).
    codes = raised_codes({"JobError": 0, "end_run": 2, "NodeError": 0})
    unknown = {code: where for code, where in codes.items() if code not in JOB_ERROR_CODES and not code.startswith("test")}
    assert unknown == {}


def doc_table_rows(heading: str) -> dict[str, list[str]]:
    section = DOC.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_docs_list_every_api_code_with_its_status():
    rows = doc_table_rows("API error codes")
    assert set(rows) == set(API_ERROR_CODES)
    for code, (status, _meaning) in API_ERROR_CODES.items():
        assert rows[code][0] == str(status), code


def test_docs_list_every_job_code_with_its_retryability():
    rows = doc_table_rows("Job error codes")
    assert set(rows) == set(JOB_ERROR_CODES)
    for code, entry in JOB_ERROR_CODES.items():
        assert rows[code][0] == ("yes" if entry.retryable else "no"), code


def test_unregistered_codes_are_refused_at_runtime():
    with pytest.raises(ValueError):
        ApiError("made_up_code", "x")
    with pytest.raises(ValueError):
        JobError("made_up_code", "x")


def test_json_error_uses_registered_default_codes():
    for status in (400, 401, 403, 404, 405, 406, 409, 413, 415, 429, 500):
        response = json_error(status)
        assert response.status_code == status
