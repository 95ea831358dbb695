"""Login, logout, sessions, CSRF, API tokens and lockout through the API."""

import pytest
from django.test import Client

from apps.accounts.services import create_api_token, revoke_api_token
from apps.audit.models import AuditEntry
from tests.conftest import PASSWORD

PROTECTED_GETS = [
    "/api/sites",
    "/api/jobs",
    "/api/metrics",
    "/api/sites/00000000-0000-4000-8000-000000000000",
    "/api/schema",
]


def login(client, email="admin@example.test", password=PASSWORD):
    return client.post("/api/login", {"email": email, "password": password}, content_type="application/json")


@pytest.mark.django_db
@pytest.mark.parametrize("path", PROTECTED_GETS)
def test_every_endpoint_but_login_answers_401_without_auth(path):
    response = Client().get(path)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


@pytest.mark.django_db
def test_logout_without_auth_is_401():
    response = Client().post("/api/logout")
    assert response.status_code == 401


def test_login_sets_an_httponly_lax_session_cookie_for_24_hours(staff_user):
    client = Client()
    response = login(client)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    cookie = response.cookies["session_token"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 24 * 60 * 60
    assert not cookie["secure"]
    assert "csrftoken" in response.cookies
    assert client.get("/api/sites").status_code == 200


def test_session_cookie_is_secure_over_https(staff_user):
    response = Client().post(
        "/api/login", {"email": "admin@example.test", "password": PASSWORD}, content_type="application/json", secure=True
    )
    assert response.cookies["session_token"]["secure"]


def test_wrong_password_is_401_and_audited_without_the_password(staff_user):
    response = login(Client(), password="wrong-password-123")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    entry = AuditEntry.objects.get(action="auth.login")
    assert entry.result == "denied"
    assert entry.actor == "admin@example.test"
    assert "wrong-password-123" not in str(entry.details)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{}, {"email": "not-an-email", "password": "x"}, {"email": "a@b.test"}, {"email": "a@b.test", "password": ""},
     {"email": "a@b.test", "password": "x", "extra": 1}, [], "text"],
)
def test_malformed_login_is_400(body):
    response = Client().post("/api/login", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


@pytest.mark.django_db
def test_login_body_that_is_not_json_is_400():
    response = Client().post("/api/login", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_repeated_failures_lock_the_login_out_even_with_the_right_password(staff_user, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert login(client, password="nope-nope").status_code == 401
    # The failure that reaches the limit is answered with the lockout already.
    assert login(client, password="nope-nope").status_code == 429
    response = login(client)
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked_out"
    assert "Retry-After" in response


def test_admin_login_form_shares_the_lockout(staff_user, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(client, password="nope-nope")
    response = client.post("/admin/login/", {"username": "admin@example.test", "password": PASSWORD})
    assert response.status_code == 429


def test_logout_revokes_the_session(staff_user):
    client = Client(enforce_csrf_checks=True)
    login(client)
    token = client.cookies["csrftoken"].value
    response = client.post("/api/logout", content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert client.get("/api/sites").status_code == 401


def test_stolen_session_cookie_is_useless_after_logout(staff_user):
    client = Client()
    login(client)
    stolen = client.cookies["session_token"].value
    client.post("/api/logout")
    thief = Client()
    thief.cookies["session_token"] = stolen
    assert thief.get("/api/sites").status_code == 401


def test_cookie_authenticated_write_needs_the_csrf_token(staff_user, site_with_production):
    site, _ = site_with_production
    client = Client(enforce_csrf_checks=True)
    login(client)
    response = client.post(f"/api/sites/{site.id}/reset", content_type="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    response = client.post(f"/api/sites/{site.id}/reset", content_type="application/json", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert response.status_code == 409  # past CSRF: the site is simply not failed


def test_bearer_token_authenticates_without_csrf(staff_user, site_with_production):
    site, _ = site_with_production
    issued = create_api_token(staff_user, "ci")
    client = Client(enforce_csrf_checks=True)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {issued.plaintext}"}
    assert client.get("/api/sites", **headers).status_code == 200
    assert client.post(f"/api/sites/{site.id}/reset", **headers).json()["code"] == "resource_not_failed"


def test_token_is_stored_hashed_and_revocation_stops_it(staff_user):
    issued = create_api_token(staff_user, "ci")
    secret = issued.plaintext.rsplit("_", 1)[1]
    assert secret not in issued.token.secret_hash
    client = Client()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {issued.plaintext}"}
    assert client.get("/api/sites", **headers).status_code == 200
    revoke_api_token(issued.token)
    response = client.get("/api/sites", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer plt_nope", "Bearer plt_abc_def", "Bearer ", "Bearer garbage"])
def test_bad_tokens_are_401(header):
    response = Client().get("/api/sites", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_non_staff_user_cannot_log_in(db):
    from apps.accounts.factories import UserFactory

    UserFactory(email="guest@example.test", is_staff=False)
    assert login(Client(), email="guest@example.test").status_code == 401
