"""GET/PATCH /api/settings: the panel's settings, checked like the admin's
page, secrets write-only (stored encrypted, shown only as <name>_set), every
change audited with the names of the settings changed and never a value."""

import pytest
from django.db import connection

from apps.accounts.factories import UserFactory
from apps.accounts.roles import VIEWERS
from apps.audit.models import AuditEntry
from apps.core import panel_settings
from apps.core.models import PanelSettings

SECRET = "tsig-secret-value-s3cr3t"


def test_settings_answer_every_setting_and_never_a_secret(api_client, db):
    row = PanelSettings.load()
    row.dns01_credentials = SECRET
    row.save()
    body = api_client.get("/api/settings").json()
    plain = [s.name for s in panel_settings.SETTINGS if not s.secret]
    secret = [s.name for s in panel_settings.SETTINGS if s.secret]
    assert set(body) == set(plain) | {f"{name}_set" for name in secret} | {"backups_enabled", "updated_at"}
    assert body["dns01_credentials_set"] is True and body["backup_s3_access_key_id_set"] is False
    assert SECRET not in str(body)


def test_patch_checks_stores_and_audits_names_only(api_client, db):
    response = api_client.patch("/api/settings", {
        "control_plane_domain": "Panel.Example.COM.", "preview_domain": "preview.example.test",
        "dns01_provider": "rfc2136", "dns01_credentials": SECRET,
    }, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["control_plane_domain"] == "panel.example.com"
    assert body["preview_domain"] == "preview.example.test" and body["dns01_credentials_set"] is True
    assert SECRET not in response.content.decode()
    row = PanelSettings.load()
    assert row.dns01_credentials == SECRET
    with connection.cursor() as cursor:
        cursor.execute("SELECT dns01_credentials FROM core_panelsettings")
        assert "s3cr3t" not in cursor.fetchone()[0]
    entry = AuditEntry.objects.get(action="panelsettings.update")
    assert entry.result == "succeeded"
    assert sorted(entry.details["changed"]) == ["control_plane_domain", "dns01_credentials", "dns01_provider",
                                                "preview_domain"]
    assert "s3cr3t" not in str(entry.details)

    # Fields left out stay; an empty string clears.
    response = api_client.patch("/api/settings", {"dns01_credentials": ""}, format="json")
    assert response.json()["dns01_credentials_set"] is False
    assert response.json()["preview_domain"] == "preview.example.test"


@pytest.mark.parametrize("body, field", [
    ({"preview_domain": "bad host; rm -rf /"}, "preview_domain"),
    ({"control_plane_domain": "*.example.com"}, "control_plane_domain"),
    ({"dns01_provider": "Not A Provider!"}, "dns01_provider"),
    ({"backup_s3_endpoint": "https://key:secret@s3.example.com"}, "backup_s3_endpoint"),
    ({"backup_s3_bucket": "A"}, "backup_s3_bucket"),
    ({"backup_s3_prefix": "../up"}, "backup_s3_prefix"),
    ({"backup_s3_secret_access_key": "two words"}, "backup_s3_secret_access_key"),
    ({"preview_domain": 5}, "preview_domain"),
    ({"no_such_setting": "x"}, "no_such_setting"),
])
def test_patch_refuses_bad_values_and_stores_nothing(api_client, db, body, field):
    response = api_client.patch("/api/settings", dict(body, dns01_provider="rfc2136")
                                if field != "dns01_provider" else body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_request"
    assert field in response.json()["details"]["fields"]
    assert PanelSettings.load().dns01_provider == ""  # nothing stored, not even the valid field
    assert AuditEntry.objects.get(action="panelsettings.update").result == "failed"


def test_patch_needs_a_setting_and_the_permission(api_client, db):
    assert api_client.patch("/api/settings", {}, format="json").status_code == 400
    from rest_framework.test import APIClient

    from apps.accounts.services import create_api_token

    viewer = APIClient()
    viewer.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_token(UserFactory(groups=[VIEWERS]), 't').plaintext}")
    assert viewer.get("/api/settings").status_code == 200
    assert viewer.patch("/api/settings", {"preview_domain": "x.example.com"}, format="json").status_code == 403
    assert PanelSettings.load().preview_domain == ""
    assert APIClient().get("/api/settings").status_code == 401
