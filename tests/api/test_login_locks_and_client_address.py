"""Who a login attempt comes from, and what stops password guessing.

X-Forwarded-For counts only when the peer is a trusted proxy; the login
throttle, django-axes and the audit log all use that one address. A guesser
who rotates addresses (a botnet, or forged headers through a proxy) still hits
the per-account lock, which an admin lifts with the User admin's action or
``manage.py unlock_account``.
"""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from apps.accounts.factories import UserFactory
from apps.accounts.models import AccountLock, User
from apps.audit.models import AuditEntry
from apps.audit.services import record as audit_record
from apps.core.client_address import client_address, parse_address
from tests.conftest import PASSWORD
from tests.test_admin import messages_of, run_action

EMAIL = "admin@example.test"
ATTACKER = "198.51.100.66"
PROXY = "127.0.0.1"


def login(password="wrong-guess-1", email=EMAIL, peer=ATTACKER, forwarded=None, client=None):
    headers = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return (client or Client()).post(
        "/api/login", {"email": email, "password": password}, content_type="application/json", **headers
    )


def admin_login(password, email=EMAIL, peer=ATTACKER):
    return Client().post("/admin/login/", {"username": email, "password": password}, REMOTE_ADDR=peer)


@pytest.fixture
def login_rate(settings):
    """A login throttle of 3 a minute, so that tests reach it quickly."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"login": "3/min"}}


@pytest.fixture
def behind_proxy(settings):
    """The panel behind a reverse proxy on loopback, as PRESSLUFT_BEHIND_PROXY
    and PRESSLUFT_TRUSTED_PROXIES=127.0.0.1 configure it."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.TRUSTED_PROXIES = ["127.0.0.1/32", "::1/128"]


# --- the throttle -------------------------------------------------------------


def test_forged_forwarded_for_from_an_untrusted_peer_does_not_escape_the_throttle(staff_user, login_rate):
    answers = [login(forwarded=f"203.0.113.{n}").status_code for n in range(5)]
    assert answers == [401, 401, 401, 429, 429]
    assert login(forwarded="203.0.113.99").json()["code"] == "too_many_requests"


def test_forged_forwarded_for_cannot_throttle_someone_else(staff_user, login_rate, behind_proxy):
    # An attacker talking to the panel directly names the admin's address: the
    # admin, coming through the proxy from that address, is not slowed down.
    for _ in range(4):
        login(forwarded="203.0.113.10")
    assert login(PASSWORD, peer=PROXY, forwarded="203.0.113.10").status_code == 200
    # Nor is anyone who names the attacker's (throttled) address.
    assert login(PASSWORD, peer="198.51.100.1", forwarded=ATTACKER).status_code == 200


def test_through_a_trusted_proxy_each_client_has_its_own_throttle(staff_user, login_rate, behind_proxy):
    answers = [login(peer=PROXY, forwarded="203.0.113.1").status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]
    # Another client behind the same proxy is not slowed down by the first.
    assert login(PASSWORD, peer=PROXY, forwarded="203.0.113.2").status_code == 200
    # A client forging the header through the proxy is known by what the proxy appended.
    answers = [login(peer=PROXY, forwarded=f"10.9.9.{n}, 203.0.113.1").status_code for n in range(2)]
    assert answers == [429, 429]


# --- django-axes (per email and address) ----------------------------------------


def test_forged_forwarded_for_from_an_untrusted_peer_does_not_change_the_axes_key(staff_user, settings):
    answers = [login(forwarded=f"203.0.113.{n}").status_code for n in range(settings.AXES_FAILURE_LIMIT)]
    assert answers[-1] == 429 and set(answers[:-1]) == {401}
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [ATTACKER]
    assert login(PASSWORD, forwarded="203.0.113.200").json()["code"] == "login_locked_out"
    # The same email from elsewhere is not locked by that (the per-account lock is higher).
    assert login(PASSWORD, peer="198.51.100.1").status_code == 200


def test_through_a_trusted_proxy_axes_keys_on_the_client(staff_user, settings, behind_proxy):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(peer=PROXY, forwarded="203.0.113.9")
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["203.0.113.9"]
    assert login(PASSWORD, peer=PROXY, forwarded="203.0.113.9").status_code == 429
    assert login(PASSWORD, peer=PROXY, forwarded="203.0.113.10").status_code == 200


# --- the per-account lock ----------------------------------------------------------


@pytest.mark.parametrize("rotation", ["peer", "forwarded through the proxy"])
def test_rotating_addresses_still_hits_the_per_account_lock(staff_user, settings, behind_proxy, rotation):
    def attempt(n, password="wrong-guess-1"):
        if rotation == "peer":
            return login(password, peer=f"198.51.{n // 250}.{n % 250 + 1}")
        return login(password, peer=PROXY, forwarded=f"203.0.{n // 250}.{n % 250 + 1}")

    limit = settings.LOGIN_ACCOUNT_FAILURE_LIMIT
    assert limit > settings.AXES_FAILURE_LIMIT
    answers = [attempt(n).status_code for n in range(limit)]
    # No single address ever reached django-axes' limit ...
    assert set(answers[:-1]) == {401}
    # ... yet the failure that reaches the account's limit is answered with the lock,
    assert answers[-1] == 429
    # and from a fresh address even the right password is refused.
    response = attempt(limit + 1, PASSWORD)
    assert response.status_code == 429
    assert response.json()["code"] == "login_locked_out"
    assert 3000 < int(response["Retry-After"]) <= 3600
    lock = AccountLock.objects.get(email=EMAIL)
    assert lock.failures == limit and lock.is_locked


def test_the_admin_login_form_counts_for_and_obeys_the_account_lock(staff_user, settings):
    for n in range(settings.LOGIN_ACCOUNT_FAILURE_LIMIT - 1):
        assert admin_login("wrong-guess-1", peer=f"198.51.100.{n + 1}").status_code == 200  # the form again
    assert login(peer="198.51.101.1").status_code == 429
    assert admin_login(PASSWORD, peer="198.51.102.1").status_code == 429
    assert login(PASSWORD, peer="198.51.102.2").status_code == 429


def test_an_unknown_email_is_locked_like_a_known_one(db, settings):
    # The answers must not tell which accounts exist.
    answers = [login(email="nobody@example.test", peer=f"198.51.100.{n + 1}").status_code
               for n in range(settings.LOGIN_ACCOUNT_FAILURE_LIMIT + 1)]
    assert answers[-2:] == [429, 429]
    assert AccountLock.objects.get(email="nobody@example.test").is_locked


def test_a_successful_login_forgives_earlier_failures(staff_user, settings):
    for n in range(settings.LOGIN_ACCOUNT_FAILURE_LIMIT - 1):
        login(peer=f"198.51.100.{n + 1}")
    assert login(PASSWORD, peer="192.0.2.10").status_code == 200
    assert not AccountLock.objects.exists()
    assert login(peer="192.0.2.11").status_code == 401


def lock_account(settings, email=EMAIL):
    for n in range(settings.LOGIN_ACCOUNT_FAILURE_LIMIT):
        login(email=email, peer=f"198.51.100.{n + 1}")
    # and django-axes' lock for one address too
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(email=email, peer="192.0.2.50")
    assert AccountLock.objects.get(email=email).is_locked
    assert AccessAttempt.objects.filter(username=email).exists()


def test_unlock_account_command_lets_the_owner_in_again_and_is_audited(staff_user, settings, capsys):
    lock_account(settings)
    call_command("unlock_account", "Admin@Example.test ")
    assert capsys.readouterr().out.startswith(
        "admin@example.test: unlocked; it was locked for every address. Cleared 20 counted failed logins")
    assert not AccountLock.objects.exists() and not AccessAttempt.objects.exists()
    assert login(PASSWORD, peer="198.51.100.3").status_code == 200
    assert login(PASSWORD, peer="192.0.2.50").status_code == 200
    entry = AuditEntry.objects.get(action="auth.unlock")
    assert (entry.actor, entry.result, entry.resource_type, entry.resource_id) == (
        "manage.py unlock_account", "succeeded", "user", str(staff_user.pk))
    assert entry.details["email"] == EMAIL and entry.details["was_locked"] is True
    assert entry.details["failures"] == settings.LOGIN_ACCOUNT_FAILURE_LIMIT
    assert entry.details["locked_addresses"] == 1  # 192.0.2.50, by django-axes


def test_unlock_account_command_needs_an_email(db):
    with pytest.raises(CommandError, match="email"):
        call_command("unlock_account", "  ")


def test_unlock_action_in_the_user_admin_is_audited(staff_user, settings):
    lock_account(settings)
    operator = UserFactory(email="ops@example.test", is_superuser=True)
    client = Client(REMOTE_ADDR="192.0.2.77")
    client.force_login(operator)
    page = client.get(f"/admin/accounts/user/{staff_user.pk}/change/").content.decode()
    assert "locked" in page and "Unlock login" in page
    response = run_action(client, User, "unlock_logins", [staff_user])
    response = client.get(response["Location"]) if response.status_code == 302 else response
    assert any("unlocked; it was locked for every address" in text for text in messages_of(response))
    assert not AccountLock.objects.exists() and not AccessAttempt.objects.exists()
    entry = AuditEntry.objects.get(action="auth.unlock")
    assert (entry.user, entry.client_address, entry.resource_id) == (operator, "192.0.2.77", str(staff_user.pk))
    assert entry.details["via"] == "admin"
    assert login(PASSWORD, peer="198.51.100.3").status_code == 200


def test_the_unlock_action_needs_the_change_user_permission(staff_user, settings):
    lock_account(settings)
    viewer = UserFactory(email="viewer@example.test")
    viewer.user_permissions.add(*Permission.objects.filter(codename="view_user"))
    client = Client()
    client.force_login(viewer)
    response = run_action(client, User, "unlock_logins", [staff_user])
    assert response.status_code in (200, 302, 403)
    assert AccountLock.objects.get(email=EMAIL).is_locked
    assert not AuditEntry.objects.filter(action="auth.unlock").exists()


# --- the audit log's address ----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("forwarded", [
    "garbage", "x" * 5000, "999.1.1.1", "203.0.113.5:4711", "<script>", "203.0.113.5, nonsense",
    "fe80::1%eth0", "\u0661.2.3.4", " , ", "203.0.113.5\x00",
])
def test_an_invalid_forwarded_value_still_writes_the_audit_entry_with_remote_addr(behind_proxy, forwarded):
    response = Client().post("/api/jobs/00000000-0000-4000-8000-000000000000/cancel",
                             REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)
    assert response.status_code == 401
    entry = AuditEntry.objects.get()
    assert (entry.result, entry.client_address) == ("denied", PROXY)


@pytest.mark.django_db
def test_the_audit_entry_records_the_client_behind_a_trusted_proxy(behind_proxy):
    Client().post("/api/jobs/00000000-0000-4000-8000-000000000000/cancel",
                  REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="10.1.1.1, 203.0.113.5")
    Client().post("/api/jobs/00000000-0000-4000-8000-000000000000/cancel",
                  REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert sorted(AuditEntry.objects.values_list("client_address", flat=True)) == [ATTACKER, "203.0.113.5"]


@pytest.mark.django_db
def test_the_audit_log_stores_an_address_it_cannot_read_as_unknown():
    entry = audit_record(action="test.action", result="succeeded", client_address="not an address")
    assert entry.client_address is None


# --- the function itself -------------------------------------------------------------------


def request_from(peer, forwarded=None):
    headers = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **headers)


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("198.51.100.1", "203.0.113.5", "198.51.100.1"),  # untrusted peer: the header is ignored
    ("127.0.0.1", None, "127.0.0.1"),
    ("127.0.0.1", "203.0.113.5", "203.0.113.5"),
    ("127.0.0.1", "1.1.1.1, 203.0.113.5", "203.0.113.5"),  # the client's own part proves nothing
    ("127.0.0.1", "203.0.113.5, 10.0.0.7", "203.0.113.5"),  # through two trusted proxies
    ("10.0.0.7", "203.0.113.5", "203.0.113.5"),
    ("127.0.0.1", "10.0.0.8, 10.0.0.7", "10.0.0.8"),  # only proxies: the first of them
    ("::ffff:127.0.0.1", "2001:db8::5", "2001:db8::5"),  # a dual-stack listener's IPv4 peer
    ("127.0.0.1", "2001:DB8:0::5", "2001:db8::5"),
    ("127.0.0.1", "203.0.113.5, bogus, 10.0.0.7", "127.0.0.1"),  # unreadable chain: the peer
    ("", "203.0.113.5", None),
    ("unix-socket", None, None),
])
def test_client_address(settings, peer, forwarded, expected):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32", "10.0.0.0/8"]
    assert client_address(request_from(peer, forwarded)) == expected


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(forwarded=st.text(max_size=2000) | st.lists(st.ip_addresses().map(str) | st.text(max_size=50)).map(", ".join))
def test_any_forwarded_value_gives_an_address_or_the_peer(settings, forwarded):
    settings.TRUSTED_PROXIES = ["127.0.0.1/32"]
    try:
        request = request_from("127.0.0.1", forwarded)
    except ValueError:  # the test client refuses some header values itself
        return
    found = client_address(request)
    assert found is not None and str(parse_address(found)) == found


def test_login_locks_are_listed_and_unlocked_in_the_admin(db, settings):
    lock_account(settings, email="nobody@example.test")  # an email of no user is locked too
    operator = UserFactory(email="ops@example.test", is_superuser=True)
    client = Client()
    client.force_login(operator)
    lock = AccountLock.objects.get()
    assert "nobody@example.test" in client.get("/admin/accounts/accountlock/").content.decode()
    assert client.get(f"/admin/accounts/accountlock/{lock.pk}/change/").status_code == 200
    response = run_action(client, AccountLock, "unlock", [lock])
    response = client.get(response["Location"]) if response.status_code == 302 else response
    assert any("nobody@example.test: unlocked; it was locked for every address" in text
               for text in messages_of(response))
    assert not AccountLock.objects.exists() and not AccessAttempt.objects.exists()
    entry = AuditEntry.objects.get(action="auth.unlock")
    assert (entry.user, entry.resource_id, entry.details["email"]) == (operator, "", "nobody@example.test")
