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

SECRET = "dHNpZy1zZWNyZXQtdmFsdWUtczNjcjN0"  # base64, as a TSIG secret is
RFC2136 = {"dns01_rfc2136_server": "192.0.2.53", "dns01_rfc2136_key_name": "acme-key"}


def test_settings_answer_every_setting_and_never_a_secret(api_client, db):
    row = PanelSettings.load()
    row.dns01_rfc2136_secret = SECRET
    row.save()
    body = api_client.get("/api/settings").json()
    plain = [s.name for s in panel_settings.SETTINGS if not s.secret]
    secret = [s.name for s in panel_settings.SETTINGS if s.secret]
    assert set(body) == set(plain) | {f"{name}_set" for name in secret} | {"backups_enabled", "updated_at",
                                                                                  "control_plane_https"}
    assert body["dns01_rfc2136_secret_set"] is True and body["backup_s3_access_key_id_set"] is False
    assert SECRET not in str(body)


def test_patch_checks_stores_and_audits_names_only(api_client, db):
    response = api_client.patch("/api/settings", {
        "control_plane_domain": "Panel.Example.COM.", "preview_domain": "preview.example.test",
        "dns01_provider": "rfc2136", "dns01_rfc2136_secret": SECRET, **RFC2136,
    }, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["control_plane_domain"] == "panel.example.com"
    assert body["preview_domain"] == "preview.example.test" and body["dns01_rfc2136_secret_set"] is True
    assert SECRET not in response.content.decode()
    row = PanelSettings.load()
    assert row.dns01_rfc2136_secret == SECRET
    with connection.cursor() as cursor:
        cursor.execute("SELECT dns01_rfc2136_secret FROM core_panelsettings")
        assert SECRET not in cursor.fetchone()[0]
    entry = AuditEntry.objects.get(action="panelsettings.update")
    assert entry.result == "succeeded"
    assert sorted(entry.details["changed"]) == ["control_plane_domain", "dns01_provider", "dns01_rfc2136_key_name",
                                                "dns01_rfc2136_secret", "dns01_rfc2136_server", "preview_domain"]
    assert SECRET not in str(entry.details)

    # Fields left out stay; an empty string clears (the preview domain first: it needs the secret).
    response = api_client.patch("/api/settings", {"preview_domain": "", "dns01_provider": "none",
                                                  "dns01_rfc2136_secret": ""}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["dns01_rfc2136_secret_set"] is False
    assert response.json()["dns01_rfc2136_server"] == "192.0.2.53"


@pytest.mark.parametrize("body, field", [
    ({"preview_domain": "bad host; rm -rf /"}, "preview_domain"),
    ({"control_plane_domain": "*.example.com"}, "control_plane_domain"),
    ({"dns01_provider": "Not A Provider!"}, "dns01_provider"),
    ({"dns01_provider": "cloudflare"}, "dns01_provider"),
    ({"preview_domain": "*.preview.example.com"}, "preview_domain"),
    ({"preview_domain": "203.0.113.7"}, "preview_domain"),
    ({"preview_domain": "preview.example.com:8443"}, "preview_domain"),
    ({"dns01_rfc2136_port": "70000"}, "dns01_rfc2136_port"),
    ({"dns01_rfc2136_server": "ns1.example.com; rm -rf /"}, "dns01_rfc2136_server"),
    ({"dns01_rfc2136_algorithm": "HMAC-SHA257"}, "dns01_rfc2136_algorithm"),
    ({"dns01_rfc2136_secret": "not base64\nkey = x"}, "dns01_rfc2136_secret"),
    ({"dns01_rfc2136_key_name": "key name"}, "dns01_rfc2136_key_name"),
    ({"dns01_propagation_seconds": "-1"}, "dns01_propagation_seconds"),
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


# --- custom domains: ACME server, its CA bundle, account e-mail, DNS resolvers ---------

def _ca_pem(name: str) -> str:
    """A self-signed CA certificate, as an operator's private ACME server would have."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_acme_and_dns_settings_are_stored_audited_and_used(api_client, db):
    from apps.domains import acme_config, node_ops

    # Unset: Let's Encrypt production, the system's CAs, no e-mail, the panel's own resolvers.
    config = acme_config.effective()
    assert config.directory_url == panel_settings.LETS_ENCRYPT_PRODUCTION
    assert (config.ca_bundle, config.email, config.dns_resolvers, config.from_environment) == ("", "", (), ())

    bundle = _ca_pem("Test ACME CA one") + "\r\n" + _ca_pem("Test ACME CA two")
    response = api_client.patch("/api/settings", {
        "acme_directory_url": panel_settings.LETS_ENCRYPT_STAGING, "acme_ca_bundle": bundle,
        "acme_email": "hostmaster@example.com", "dns_resolvers": " 192.0.2.53, 127.0.0.1:5353 ,[2001:db8::53]:53",
    }, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["acme_directory_url"] == panel_settings.LETS_ENCRYPT_STAGING
    assert body["acme_email"] == "hostmaster@example.com"
    assert body["dns_resolvers"] == "192.0.2.53,127.0.0.1:5353,[2001:db8::53]:53"
    assert body["acme_ca_bundle"].count("-----BEGIN CERTIFICATE-----") == 2 and "\r" not in body["acme_ca_bundle"]
    entry = AuditEntry.objects.get(action="panelsettings.update")
    assert entry.result == "succeeded"
    assert sorted(entry.details["changed"]) == ["acme_ca_bundle", "acme_directory_url", "acme_email", "dns_resolvers"]

    # What the domain jobs use (the parameters of domain_sync.py, the DNS check's resolvers).
    assert node_ops.acme_params() == {"directory": panel_settings.LETS_ENCRYPT_STAGING,
                                      "email": "hostmaster@example.com", "ca_bundle": body["acme_ca_bundle"]}
    assert acme_config.effective().dns_resolvers == (("192.0.2.53", 53), ("127.0.0.1", 5353), ("2001:db8::53", 53))

    # http only for a server on loopback (the tests' own ACME servers).
    response = api_client.patch("/api/settings", {"acme_directory_url": "http://127.0.0.1:14000/dir"}, format="json")
    assert response.status_code == 200, response.content
    # Cleared: back to the defaults.
    response = api_client.patch("/api/settings", {"acme_directory_url": "", "acme_ca_bundle": "",
                                                  "dns_resolvers": ""}, format="json")
    assert response.status_code == 200
    config = acme_config.effective()
    assert (config.directory_url, config.ca_bundle, config.dns_resolvers) == (
        panel_settings.LETS_ENCRYPT_PRODUCTION, "", ())


@pytest.mark.parametrize("field, value", [
    ("acme_directory_url", "http://acme.example.com/directory"),
    ("acme_directory_url", "ftp://acme.example.com/directory"),
    ("acme_directory_url", "https://user:pw@acme.example.com/directory"),
    ("acme_directory_url", "https://acme.example.com/dir ectory"),
    ("acme_directory_url", "acme.example.com/directory"),
    ("acme_directory_url", "https://[::1"),
    ("acme_ca_bundle", "/etc/ssl/certs/ca.pem"),
    ("acme_ca_bundle", "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"),
    ("acme_ca_bundle", "PRIVATE KEY"),
    ("acme_email", "not an address"),
    ("acme_email", "a@b"),
    ("acme_email", "x@example.com\nBcc: y@example.com"),
    ("dns_resolvers", "dns.example.com"),
    ("dns_resolvers", "192.0.2.1; rm -rf /"),
    ("dns_resolvers", "192.0.2.1:99999"),
    ("dns_resolvers", "[2001:db8::1]x"),
    ("dns_resolvers", "fe80::1%eth0"),
])
def test_acme_and_dns_settings_refuse_bad_values(api_client, db, field, value):
    response = api_client.patch("/api/settings", {field: value, "acme_email": "ok@example.com"}
                                if field != "acme_email" else {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "bad_request"
    assert field in response.json()["details"]["fields"]
    row = PanelSettings.load()
    assert (row.acme_email, getattr(row, field)) == ("", "")


def test_acme_ca_bundle_refuses_a_private_key_next_to_the_certificate(api_client, db):
    key_block = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
    response = api_client.patch("/api/settings", {"acme_ca_bundle": _ca_pem("CA") + key_block}, format="json")
    assert response.status_code == 400
    assert "acme_ca_bundle" in response.json()["details"]["fields"]


def test_environment_variables_win_over_the_stored_acme_settings_field_by_field(api_client, db, settings, tmp_path):
    from apps.domains import acme_config
    from apps.jobs.errors import JobError

    stored_bundle = _ca_pem("Stored CA")
    assert api_client.patch("/api/settings", {
        "acme_directory_url": panel_settings.LETS_ENCRYPT_STAGING, "acme_ca_bundle": stored_bundle,
        "acme_email": "stored@example.com", "dns_resolvers": "192.0.2.53",
    }, format="json").status_code == 200
    file_bundle = _ca_pem("File CA")
    (tmp_path / "ca.pem").write_text(file_bundle)
    settings.ACME_FROM_ENVIRONMENT = {"directory_url": "https://acme.internal.example/directory",
                                      "ca_bundle": str(tmp_path / "ca.pem")}
    config = acme_config.effective()
    assert config.directory_url == "https://acme.internal.example/directory"
    assert config.ca_bundle == file_bundle  # the variable names a PEM file
    assert config.email == "stored@example.com" and config.dns_resolvers == (("192.0.2.53", 53),)
    assert config.from_environment == ("ca_bundle", "directory_url")

    settings.ACME_FROM_ENVIRONMENT = {"email": "env@example.com", "dns_resolvers": "127.0.0.1:5353, ::1"}
    config = acme_config.effective()
    assert config.directory_url == panel_settings.LETS_ENCRYPT_STAGING and config.ca_bundle.strip() == stored_bundle.strip()
    assert config.email == "env@example.com"
    assert config.dns_resolvers == (("127.0.0.1", 5353), ("::1", 53))
    # The API shows what is stored; the environment's values are not settings to change there.
    assert api_client.get("/api/settings").json()["acme_email"] == "stored@example.com"

    # A variable the panel cannot use fails the domain job with its own code.
    settings.ACME_FROM_ENVIRONMENT = {"dns_resolvers": "resolver.example.com"}
    with pytest.raises(JobError) as caught:
        acme_config.effective()
    assert caught.value.code == "acme_settings_invalid"


# --- the preview domain and its wildcard certificate (DNS-01) ---------------------------

def test_preview_domain_is_stored_in_ascii_and_needs_its_provider_and_credentials(api_client, db):
    # Each refusal: 400 {code, message}, the fields named, nothing stored.
    for body, field in (
        ({"preview_domain": "preview.example.com"}, "dns01_provider"),
        ({"preview_domain": "preview.example.com", "dns01_provider": "rfc2136"}, "dns01_rfc2136_secret"),
        ({"dns01_provider": "rfc2136", "dns01_rfc2136_server": "192.0.2.53"}, "dns01_rfc2136_key_name"),
    ):
        response = api_client.patch("/api/settings", body, format="json")
        assert response.status_code == 400, response.content
        answer = response.json()
        assert answer["code"] == "bad_request" and answer["message"]
        assert field in answer["details"]["fields"]
        row = PanelSettings.load()
        assert (row.preview_domain, row.dns01_provider, row.dns01_rfc2136_server) == ("", "", "")

    response = api_client.patch("/api/settings", {
        "preview_domain": "Vorschau.Bücher.Example.", "dns01_provider": "RFC2136", "dns01_rfc2136_secret": SECRET,
        "dns01_rfc2136_port": "053", "dns01_rfc2136_algorithm": "hmac-sha256", **RFC2136}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["preview_domain"] == "vorschau.xn--bcher-kva.example"
    assert (body["dns01_provider"], body["dns01_rfc2136_port"], body["dns01_rfc2136_algorithm"]) == (
        "rfc2136", "53", "HMAC-SHA256")
    assert SECRET not in response.content.decode()

    # With a preview domain the credentials cannot be taken away.
    response = api_client.patch("/api/settings", {"dns01_rfc2136_secret": ""}, format="json")
    assert response.status_code == 400
    assert "dns01_rfc2136_secret" in response.json()["details"]["fields"]
    assert PanelSettings.load().dns01_rfc2136_secret == SECRET


def test_preview_environment_variables_win_field_by_field(api_client, db, settings):
    from apps.domains import preview
    from apps.jobs.errors import JobError

    assert api_client.patch("/api/settings", {"preview_domain": "stored.example.com", "dns01_provider": "rfc2136",
                                              "dns01_rfc2136_secret": SECRET, **RFC2136},
                            format="json").status_code == 200
    settings.PREVIEW_FROM_ENVIRONMENT = {"preview_domain": "env.example.com", "dns01_rfc2136_port": "5353"}
    config = preview.effective()
    assert config.domain == "env.example.com"
    assert config.credentials == {"dns_rfc2136_server": "192.0.2.53", "dns_rfc2136_port": "5353",
                                  "dns_rfc2136_name": "acme-key", "dns_rfc2136_algorithm": "HMAC-SHA512",
                                  "dns_rfc2136_secret": SECRET}
    assert config.from_environment == ("dns01_rfc2136_port", "preview_domain")
    assert api_client.get("/api/settings").json()["preview_domain"] == "stored.example.com"

    settings.PREVIEW_FROM_ENVIRONMENT = {"preview_domain": "*.env.example.com"}
    with pytest.raises(JobError) as caught:
        preview.effective()
    assert caught.value.code == "preview_settings_invalid"
