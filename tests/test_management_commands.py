"""ensure_admin and create_api_token, run as an operator would run them."""

from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client

from apps.accounts.factories import UserFactory
from apps.accounts.models import ApiToken, User, hash_token_secret
from apps.audit.models import AuditEntry

pytestmark = pytest.mark.django_db


def run(*args, **options):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def can_log_in(email, password) -> bool:
    # Checked on the stored account rather than through POST /api/login, whose
    # throttle is shared with every other test in the run.
    user = User.objects.filter(email=email).first()
    return bool(user and user.is_active and user.is_staff and user.check_password(password))


@pytest.fixture
def no_admin_env(monkeypatch):
    monkeypatch.delenv("PRESSLUFT_ADMIN_EMAIL", raising=False)
    monkeypatch.delenv("PRESSLUFT_ADMIN_PASSWORD", raising=False)


def test_ensure_admin_generates_a_password_once_when_none_is_given(no_admin_env):
    out, _ = run("ensure_admin")
    assert "Admin login: admin@localhost" in out
    password = out.split("Admin password: ")[1].strip()
    assert len(password) >= 12
    assert can_log_in("admin@localhost", password)
    assert AuditEntry.objects.filter(action="user.create").count() == 1

    again, _ = run("ensure_admin")
    assert "Admin login: admin@localhost" in again
    assert password not in again
    assert "unchanged" in again
    assert User.objects.count() == 1
    assert can_log_in("admin@localhost", password)


def test_the_generated_admin_logs_in_through_the_api(no_admin_env):
    out, _ = run("ensure_admin")
    password = out.split("Admin password: ")[1].strip()
    cache.clear()  # the login throttle counts every login of the test run
    client = Client()
    response = client.post(
        "/api/login", {"email": "admin@localhost", "password": password}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert client.get("/api/sites").status_code == 200


def test_ensure_admin_with_email_and_password_is_idempotent(no_admin_env):
    out, _ = run("ensure_admin", email="Ops@Example.test", password="first passphrase 1")
    assert "Admin login: ops@example.test" in out
    assert "first passphrase 1" not in out
    run("ensure_admin", email="ops@example.test", password="first passphrase 1")
    assert User.objects.filter(email="ops@example.test").count() == 1
    user = User.objects.get(email="ops@example.test")
    assert user.is_superuser and user.is_staff and user.is_active
    assert can_log_in("ops@example.test", "first passphrase 1")


def test_ensure_admin_updates_the_password_when_given(no_admin_env):
    run("ensure_admin", email="ops@example.test", password="first passphrase 1")
    run("ensure_admin", email="ops@example.test", password="second passphrase 2")
    assert not can_log_in("ops@example.test", "first passphrase 1")
    assert can_log_in("ops@example.test", "second passphrase 2")


def test_ensure_admin_reads_the_environment(monkeypatch):
    monkeypatch.setenv("PRESSLUFT_ADMIN_EMAIL", "env@example.test")
    monkeypatch.setenv("PRESSLUFT_ADMIN_PASSWORD", "from the environment 3")
    out, _ = run("ensure_admin")
    assert "Admin login: env@example.test" in out
    assert "from the environment 3" not in out
    assert can_log_in("env@example.test", "from the environment 3")


def test_ensure_admin_promotes_an_existing_user_and_keeps_its_password_without_one(no_admin_env):
    UserFactory(email="staff@example.test", is_staff=False)
    out, _ = run("ensure_admin", email="staff@example.test")
    assert "Admin password: unchanged" in out
    user = User.objects.get(email="staff@example.test")
    assert user.is_superuser and user.is_staff
    assert user.check_password("correct horse battery")


def test_ensure_admin_with_a_new_email_and_no_password_generates_one(no_admin_env):
    out, _ = run("ensure_admin", email="new@example.test")
    password = out.split("Admin password: ")[1].strip()
    assert can_log_in("new@example.test", password)


def test_ensure_admin_rejects_a_bad_email_or_a_password_without_email(no_admin_env):
    with pytest.raises(CommandError, match="not an email address"):
        run("ensure_admin", email="not-an-email", password="whatever passphrase")
    with pytest.raises(CommandError, match="needs an email"):
        run("ensure_admin", password="whatever passphrase")
    assert not User.objects.exists()


def test_create_api_token_prints_a_token_that_works(staff_user):
    out, err = run("create_api_token", "ADMIN@example.test", name="CI deploys", expires_days=7)
    plaintext = out.strip()
    assert plaintext.startswith("plt_") and "\n" not in plaintext
    assert "shown only now" in err
    token = ApiToken.objects.get(name="CI deploys")
    assert token.user == staff_user
    assert token.expires_at is not None
    assert token.secret_hash == hash_token_secret(plaintext.split("_", 2)[2])

    response = Client().get("/api/sites", HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.status_code == 200
    assert response.json() == []
    assert AuditEntry.objects.filter(action="apitoken.create", resource_id=str(token.pk)).exists()


def test_create_api_token_refuses_unknown_or_non_staff_users_and_bad_expiry(staff_user):
    UserFactory(email="visitor@example.test", is_staff=False)
    with pytest.raises(CommandError, match="no user"):
        run("create_api_token", "nobody@example.test", name="x")
    with pytest.raises(CommandError, match="not an active staff user"):
        run("create_api_token", "visitor@example.test", name="x")
    with pytest.raises(CommandError, match="at least 1"):
        run("create_api_token", staff_user.email, name="x", expires_days=0)
    assert not ApiToken.objects.exists()
