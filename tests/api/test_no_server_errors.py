"""Whatever a client sends to the write endpoints of sites, environments and
deploys, the answer is a 2xx or a JSON {code, message} 4xx, never a 500."""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.core.errors import API_ERROR_CODES
from apps.environments.models import Environment, Release

pytestmark = pytest.mark.django_db

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=10,
)
FIELDS = ["name", "slug", "type", "promotion_preset", "source_environment_id", "expires_at", "source_type",
          "source_ref", "release_id", "repository_url", "new_deploy_key"]
BODIES = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), JSON_VALUES, max_size=6) | JSON_VALUES
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def target(site_with_production, settings, tmp_path):
    settings.DEPLOY_ARCHIVE_DIR = tmp_path / "archives"
    site, production = site_with_production
    release = Release.objects.create(environment=production, source_type="git", source_ref="core",
                                     directory="20260101T000000Z", health="healthy")
    Environment.objects.filter(pk=production.pk).update(current_release=release)
    return site, production


def assert_clean(response):
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        body = response.json()
        assert body["code"] in API_ERROR_CODES and body["message"], body


@FUZZ
@given(body=BODIES, which=st.sampled_from(["environments", "deploy", "rollback", "git"]))
def test_json_writes_never_fail_with_a_server_error(api_client, target, body, which):
    site, production = target
    path, method = {
        "environments": (f"/api/sites/{site.id}/environments", api_client.post),
        "deploy": (f"/api/environments/{production.id}/deploy", api_client.post),
        "rollback": (f"/api/environments/{production.id}/rollback", api_client.post),
        "git": (f"/api/environments/{production.id}/git-repository", api_client.put),
    }[which]
    assert_clean(method(path, body, format="json"))


def _usable_file_name(name: str) -> bool:
    # Names Django's upload object itself refuses to build (the test's own step, not the panel's).
    return "\x00" not in name and os.path.basename(name) not in ("", ".", "..")


@FUZZ
@given(data=st.binary(max_size=2048), name=st.text(min_size=1, max_size=300).filter(_usable_file_name))
def test_any_uploaded_bytes_get_a_clear_answer(api_client, target, data, name):
    _, production = target
    response = api_client.post(f"/api/environments/{production.id}/deploy-archives",
                               {"file": SimpleUploadedFile(name, data)}, format="multipart")
    assert_clean(response)
    assert response.status_code in (201, 400)


@pytest.mark.parametrize("which, body", [
    ("git", {"repository_url": "https://git.example.test/a\x00b.git"}),
    ("deploy", {"source_type": "git", "source_ref": "https://git.example.test/a\x00b.git#main"}),
    ("deploy", {"source_type": "upload", "source_ref": "\x00"}),
    ("environments", {"name": "a\x00b", "slug": "x", "type": "staging", "promotion_preset": "content-protect"}),
])
def test_nul_characters_are_refused_not_stored(api_client, target, which, body):
    site, production = target
    path, method = {
        "environments": (f"/api/sites/{site.id}/environments", api_client.post),
        "deploy": (f"/api/environments/{production.id}/deploy", api_client.post),
        "git": (f"/api/environments/{production.id}/git-repository", api_client.put),
    }[which]
    response = method(path, body, format="json")
    assert response.status_code == 400 and response.json()["code"] == "bad_request", response.content
