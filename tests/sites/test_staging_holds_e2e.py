"""End to end on the real local node: a shop-shaped production site (made
here: WooCommerce cannot be fetched, so its option names, the Action
Scheduler's tables with a due subscription renewal, a stand-in for the
Action Scheduler's queue runner and a minimal payment gateway that calls a
payment API host) is cloned to staging. The copy holds its scheduled work,
switches its gateway off, refuses and lists requests to the payment host and
to every host not on its allow-list; an operator runs the held work once from
the admin (audited); production, untouched, still runs its cron and charges.

The payment API host is ``payments-api.localhost``, added to the payment
hosts by PRESSLUFT_STAGING_EXTRA_PAYMENT_HOSTS. curl resolves every
``*.localhost`` name to loopback by itself, without asking DNS, so no
request can leave the machine even if a hold failed: it would reach the
small server below, which records it (and the test would see it).
"""

import http.server
import io
import json
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from apps.accounts.factories import UserFactory
from apps.audit.choices import AuditResult
from apps.audit.models import AuditEntry
from apps.environments import naming, node_ops
from apps.environments.models import Environment
from apps.jobs import runner
from apps.jobs.errors import JobError
from apps.jobs.models import Job
from tests.sites.test_environment_clone_e2e import sql, wp_helper
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)

PAYMENT_HOST = "payments-api.localhost"
FULFILMENT_HOST = "fulfilment.localhost"
RENEWAL_HOOK = "woocommerce_scheduled_subscription_payment"
WAIT_SECONDS = 90  # how long a background cron run may take on a loaded machine; never a measured time

# A stand-in for the parts of a shop that reach the world: the Action
# Scheduler's queue runner on its WP-Cron hook (it honours the same filter as
# the real one), a subscription renewal that charges through the payment API
# (as real gateways do, whether or not the gateway is enabled for checkout),
# and page-load probes that call the payment and fulfilment hosts.
SHOP_PLUGIN = r"""<?php
/**
 * Plugin Name: Pressluft test shop
 */

add_filter('cron_schedules', function ($schedules) {
    $schedules['every_minute'] = ['interval' => 60, 'display' => 'Every minute'];
    return $schedules;
});

add_action('init', function () {
    if (!wp_next_scheduled('action_scheduler_run_queue')) {
        wp_schedule_event(time() - 60, 'every_minute', 'action_scheduler_run_queue', ['WP Cron']);
    }
});

add_action('action_scheduler_run_queue', function ($context = '') {
    if ((int) apply_filters('action_scheduler_queue_runner_concurrent_batches', 1) < 1) {
        return;
    }
    global $wpdb;
    $table = $wpdb->prefix . 'actionscheduler_actions';
    $due = $wpdb->get_results("SELECT action_id, hook, args FROM {$table} WHERE status = 'pending' AND scheduled_date_gmt <= UTC_TIMESTAMP() ORDER BY action_id LIMIT 25");
    foreach ((array) $due as $action) {
        $wpdb->update($table, ['status' => 'in-progress', 'attempts' => 1], ['action_id' => $action->action_id]);
        do_action_ref_array($action->hook, array_values((array) json_decode($action->args, true)));
        $wpdb->update($table, ['status' => 'complete', 'last_attempt_gmt' => gmdate('Y-m-d H:i:s')], ['action_id' => $action->action_id]);
    }
});

add_action('woocommerce_scheduled_subscription_payment', function ($subscription_id) {
    $response = wp_remote_post(get_option('pl_test_payment_url') . '/v1/charges', [
        'body' => ['subscription' => (string) $subscription_id, 'amount' => '1999'],
        'timeout' => 10,
    ]);
    update_option('pl_test_renewal_' . $subscription_id,
        is_wp_error($response) ? 'refused: ' . $response->get_error_code() : 'charged: ' . wp_remote_retrieve_response_code($response));
});

add_action('template_redirect', function () {
    $probes = ['pl_test_charge' => ['pl_test_payment_url', '/v1/charges?key=sk_live_secret_in_query'],
               'pl_test_fulfil' => ['pl_test_fulfilment_url', '/orders']];
    foreach ($probes as $param => [$option, $path]) {
        if (isset($_GET[$param])) {
            $response = wp_remote_post(get_option($option) . $path, ['body' => ['order' => '1001'], 'timeout' => 10]);
            header('Content-Type: text/plain');
            echo is_wp_error($response) ? 'refused: ' . $response->get_error_code() : 'sent: ' . wp_remote_retrieve_response_code($response);
            exit;
        }
    }
});

add_action('shutdown', function () {
    if (defined('DOING_CRON') && DOING_CRON) {
        update_option('pl_test_cron_requests', (int) get_option('pl_test_cron_requests', 0) + 1);
    }
});
"""

ACTION_SCHEDULER_TABLES = [
    """CREATE TABLE wp_actionscheduler_actions (
        action_id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
        hook varchar(191) NOT NULL,
        status varchar(20) NOT NULL,
        scheduled_date_gmt datetime NULL default '0000-00-00 00:00:00',
        scheduled_date_local datetime NULL default '0000-00-00 00:00:00',
        priority tinyint unsigned NOT NULL default '10',
        args varchar(191),
        schedule longtext,
        group_id bigint(20) unsigned NOT NULL default '0',
        attempts int(11) NOT NULL default '0',
        last_attempt_gmt datetime NULL default '0000-00-00 00:00:00',
        last_attempt_local datetime NULL default '0000-00-00 00:00:00',
        claim_id bigint(20) unsigned NOT NULL default '0',
        extended_args varchar(8000) DEFAULT NULL,
        PRIMARY KEY (action_id), KEY hook_status_scheduled_date_gmt (hook(163), status, scheduled_date_gmt))""",
    """CREATE TABLE wp_actionscheduler_groups (group_id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
        slug varchar(255) NOT NULL, PRIMARY KEY (group_id))""",
    """CREATE TABLE wp_actionscheduler_claims (claim_id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
        date_created_gmt datetime NULL default '0000-00-00 00:00:00', PRIMARY KEY (claim_id))""",
    """CREATE TABLE wp_actionscheduler_logs (log_id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
        action_id bigint(20) unsigned NOT NULL, message text NOT NULL,
        log_date_gmt datetime NULL default '0000-00-00 00:00:00', PRIMARY KEY (log_id))""",
]


class PaymentAPI:
    """A loopback HTTP server standing in for the payment and fulfilment APIs: records every request."""

    def __init__(self):
        self.requests: list[tuple[str, str, str]] = []
        recorded = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                recorded.append((self.command, (self.headers.get("Host") or "").split(":")[0], self.path))
                body = b'{"id": "ch_test", "status": "succeeded"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, host: str) -> str:
        return f"http://{host}:{self.port}"

    def hosts(self) -> list[str]:
        return [host for _, host, _ in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def payment_api():
    server = PaymentAPI()
    yield server
    server.close()


@pytest.fixture
def staff_client(db):
    client = Client()
    client.force_login(UserFactory(email="shop-operator@example.test", is_superuser=True))
    return client


def wait_for(check, what: str):
    """Poll until ``check()`` is true (a background cron run finishes after its response)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


def option(environment, name):
    return sql(naming.system_name(environment), f"SELECT option_value FROM wp_options WHERE option_name='{name}'")


def action_status(environment) -> str:
    return sql(naming.system_name(environment),
               f"SELECT status FROM wp_actionscheduler_actions WHERE hook='{RENEWAL_HOOK}'")


def cron_request(environment):
    """One request to wp-cron.php, the way a system cron job runs WP-Cron; returns
    once the run's shutdown was recorded (wp-cron.php answers before it runs)."""
    database = naming.system_name(environment)
    # A page load elsewhere may have left WP-Cron's lock; a real cron run would wait for it to expire.
    sql(database, "DELETE FROM wp_options WHERE option_name IN ('_transient_doing_cron', '_transient_timeout_doing_cron')")
    before = int(option(environment, "pl_test_cron_requests") or 0)
    status, _, _, _ = http_get(environment.preview_url, f"/wp-cron.php?nocache={uuid.uuid4().hex}")
    assert status == 200
    wait_for(lambda: int(option(environment, "pl_test_cron_requests") or 0) > before, "the wp-cron.php run")


def probe(environment, param: str) -> str:
    status, _, body, _ = http_get(environment.preview_url, f"/?{param}=1&nocache={uuid.uuid4().hex}")
    assert status == 200, body[:300]
    return body.strip()


def make_shop(production, payment_api):
    """WooCommerce's options, a Stripe gateway with live keys, the Action
    Scheduler's tables with a renewal due an hour ago, the stand-in plugin."""
    plugin = Path(naming.root(production)) / "current" / "wp-content" / "plugins" / "pl-test-shop" / "pl-test-shop.php"
    plugin.parent.mkdir(parents=True, exist_ok=True)
    plugin.write_text(SHOP_PLUGIN)
    plugin.chmod(0o644)
    database = naming.system_name(production)
    for statement in ACTION_SCHEDULER_TABLES:
        sql(database, statement)
    sql(database, "INSERT INTO wp_actionscheduler_groups (slug) VALUES ('woocommerce-subscriptions')")
    sql(database, "INSERT INTO wp_actionscheduler_actions (hook, status, scheduled_date_gmt, scheduled_date_local, "
                  f"args, schedule, group_id) VALUES ('{RENEWAL_HOOK}', 'pending', UTC_TIMESTAMP() - INTERVAL 1 HOUR, "
                  "NOW() - INTERVAL 1 HOUR, '{\"subscription_id\":4711}', 'O:30:\"ActionScheduler_SimpleSchedule\":0:{}', 1)")
    options = {
        "woocommerce_version": "8.9.1",
        "woocommerce_db_version": "8.9.1",
        "woocommerce_currency": "EUR",
        "woocommerce_stripe_settings": {"enabled": "yes", "testmode": "no", "title": "Card",
                                        "secret_key": "sk_live_not_a_real_key", "publishable_key": "pk_live_x"},
        "woocommerce_bacs_settings": {"enabled": "yes", "title": "Bank transfer"},
        "pl_test_payment_url": payment_api.url(PAYMENT_HOST),
        "pl_test_fulfilment_url": payment_api.url(FULFILMENT_HOST),
        "active_plugins": ["pl-test-shop/pl-test-shop.php"],
    }
    for name, value in options.items():
        wp_helper(production, {"command": "option-set", "name": name, "value": value})
    # The plugin, now active, scheduled the queue runner's WP-Cron event (due at once).
    wp_helper(production, {"command": "option-get", "name": "blogname"})
    assert "action_scheduler_run_queue" in option(production, "cron")


def test_a_shop_clone_holds_its_scheduled_work_payments_and_outgoing_requests(
        api_client, local_node, staff_client, payment_api, settings):
    settings.STAGING_EXTRA_PAYMENT_HOSTS = [PAYMENT_HOST]
    site, production = create_site(api_client, "Kappa Kiosk", "kappa")
    try:
        make_shop(production, payment_api)
        response = api_client.post(
            f"/api/sites/{site.id}/environments",
            {"name": "Staging", "slug": "staging", "type": "staging", "promotion_preset": "content-protect"},
            format="json",
        )
        assert response.status_code == 202, response.content
        assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
        staging = Environment.objects.get(site=site, slug="staging")
        assert action_status(staging) == "pending"

        _holds_are_listed(api_client, staging, production)
        _gateway_is_off(staging, production)
        _scheduled_work_is_held(staging, payment_api)
        _outgoing_requests_are_refused_and_listed(api_client, staging, payment_api)
        _allow_list_lets_a_host_through(api_client, staging, payment_api)
        _run_once_from_the_admin(staff_client, staging, payment_api)
        _the_request_log_is_read_as_hostile(api_client, staging)

        # Production, untouched, runs its cron: the renewal charges through the payment API.
        assert action_status(production) == "pending"
        cron_request(production)
        wait_for(lambda: action_status(production) == "complete", "production's renewal")
        assert option(production, "pl_test_renewal_4711") == "charged: 200"
        assert ("POST", PAYMENT_HOST, "/v1/charges") in payment_api.requests
        response = api_client.get(f"/api/environments/{production.id}/staging-holds")
        assert response.status_code == 409 and response.json()["code"] == "conflict", response.content
        response = api_client.post(f"/api/environments/{production.id}/run-scheduled")
        assert response.status_code == 409 and response.json()["code"] == "conflict", response.content
        # The node refuses it too, should the panel ever ask.
        with pytest.raises(JobError) as refused:
            node_ops.run_scheduled(production)
        assert refused.value.code == "wordpress_failed" and "holds no scheduled work" in refused.value.message
    finally:
        response = api_client.delete(f"/api/sites/{site.id}")
        if response.status_code == 202:
            runner.run_job(response.json()["job_id"])


def _holds_are_listed(api_client, staging, production):
    response = api_client.get(f"/api/environments/{staging.id}/staging-holds")
    assert response.status_code == 200, response.content
    holds = response.json()
    assert {hold["name"]: hold["active"] for hold in holds["holds"]} == {
        "wp_cron": True, "action_scheduler": True, "payment_gateways": True, "outgoing_requests": True,
        "mail": True, "search_engines": True,
    }
    assert holds["due_scheduled_actions"] == 1 and holds["due_cron_events"] >= 1
    assert {"option": "woocommerce_stripe_settings", "enabled": "no"} in holds["gateway_settings"]
    assert {"option": "woocommerce_bacs_settings", "enabled": "no"} in holds["gateway_settings"]
    assert "stripe.com" in holds["payment_hosts"] and PAYMENT_HOST in holds["payment_hosts"]
    assert holds["allowed_hosts"] == []


def _gateway_is_off(staging, production):
    """Switched off and to test mode as WordPress reads it; the database keeps production's values."""
    stripe = wp_helper(staging, {"command": "option-get", "name": "woocommerce_stripe_settings"})["value"]
    assert (stripe["enabled"], stripe["testmode"]) == ("no", "yes")
    assert wp_helper(staging, {"command": "option-get", "name": "woocommerce_bacs_settings"})["value"]["enabled"] == "no"
    assert 's:7:"enabled";s:3:"yes"' in option(staging, "woocommerce_stripe_settings")
    live = wp_helper(production, {"command": "option-get", "name": "woocommerce_stripe_settings"})["value"]
    assert (live["enabled"], live["testmode"]) == ("yes", "no")


def _scheduled_work_is_held(staging, payment_api):
    """Page loads spawn no WP-Cron, and a run of wp-cron.php finds nothing due."""
    for _ in range(3):
        status, _, _, _ = http_get(staging.preview_url, f"/?nocache={uuid.uuid4().hex}")
        assert status == 200
    cron_request(staging)
    assert action_status(staging) == "pending"
    assert option(staging, "pl_test_renewal_4711") == ""
    assert payment_api.requests == []


def outgoing(api_client, environment) -> list[dict]:
    response = api_client.get(f"/api/environments/{environment.id}/outgoing-requests")
    assert response.status_code == 200, response.content
    return response.json()


def _outgoing_requests_are_refused_and_listed(api_client, staging, payment_api):
    assert probe(staging, "pl_test_charge") == "refused: pressluft_outgoing_blocked"
    assert probe(staging, "pl_test_fulfil") == "refused: pressluft_outgoing_blocked"
    assert payment_api.requests == []
    rows = outgoing(api_client, staging)
    assert [(row["method"], row["host"], row["path"], row["blocked"], row["reason"]) for row in rows[:2]] == [
        ("POST", FULFILMENT_HOST, "/orders", True, "not on the allow-list"),
        ("POST", PAYMENT_HOST, "/v1/charges", True, "payment processor"),
    ]
    assert rows[0]["time"]
    # The query string (here a key) is never recorded.
    log = Path(naming.root(staging)) / "logs" / "outgoing-requests.log"
    assert "sk_live_secret_in_query" not in log.read_text()
    response = api_client.get(f"/api/environments/{staging.id}/outgoing-requests", {"limit": 1})
    assert [row["host"] for row in response.json()] == [FULFILMENT_HOST]
    for bad in ("0", "201", "x"):
        response = api_client.get(f"/api/environments/{staging.id}/outgoing-requests", {"limit": bad})
        assert response.status_code == 400, response.content


def _allow_list_lets_a_host_through(api_client, staging, payment_api):
    url = f"/api/environments/{staging.id}/outgoing-allow-list"
    for bad in ({"hosts": ["https://x.example"]}, {"hosts": ["a b"]}, {"hosts": "x.example"}, {"hosts": []} | {"x": 1}):
        response = api_client.put(url, bad, format="json")
        assert response.status_code == 400, (bad, response.content)
    response = api_client.put(url, {"hosts": [FULFILMENT_HOST.upper(), FULFILMENT_HOST]}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"hosts": [FULFILMENT_HOST]}
    assert api_client.get(url).json() == {"hosts": [FULFILMENT_HOST]}
    assert AuditEntry.objects.filter(action="environment.set_outgoing_allow_list", result=AuditResult.SUCCEEDED).exists()
    assert probe(staging, "pl_test_fulfil") == "sent: 200"
    assert payment_api.requests == [("POST", FULFILMENT_HOST, "/orders")]
    # The payment host stays refused.
    assert probe(staging, "pl_test_charge") == "refused: pressluft_outgoing_blocked"
    rows = outgoing(api_client, staging)
    assert [(row["host"], row["blocked"], row["reason"]) for row in rows[:2]] == [
        (PAYMENT_HOST, True, "payment processor"), (FULFILMENT_HOST, False, "allow-list"),
    ]
    response = api_client.put(url, {"hosts": []}, format="json")
    assert response.status_code == 200 and response.json() == {"hosts": []}
    assert probe(staging, "pl_test_fulfil") == "refused: pressluft_outgoing_blocked"
    payment_api.requests.clear()


def _run_once_from_the_admin(staff_client, staging, payment_api):
    page = reverse("admin:environments_environment_staging_holds", args=(staging.pk,))
    body = staff_client.get(page).content.decode()
    assert "Run held scheduled work once" in body and "1 due Action Scheduler action(s)" in body, body[-3000:]
    assert PAYMENT_HOST in body and "payment processor" in body
    response = staff_client.post(page, {"run_scheduled": "1"})
    job = Job.objects.get(environment=staging, job_type="env_run_scheduled")
    assert response.status_code == 302 and response["Location"] == reverse("admin:jobs_job_change", args=(job.pk,))
    entry = AuditEntry.objects.get(action="environment.run_scheduled", job=job)
    assert entry.result == AuditResult.ACCEPTED and entry.details["via"] == "admin"
    assert runner.run_job(job.pk) == "succeeded", job_log(job.pk)
    job.refresh_from_db()
    assert "action_scheduler_run_queue" in job.result["hooks"]
    assert job.result["due_before"]["scheduled_actions"] == 1 and job.result["due_after"]["scheduled_actions"] == 0
    entry.refresh_from_db()
    assert entry.result == AuditResult.COMPLETED
    # It ran once: the renewal tried to charge, and the payment hold refused it.
    assert action_status(staging) == "complete"
    assert option(staging, "pl_test_renewal_4711") == "refused: pressluft_outgoing_blocked"
    assert payment_api.requests == []
    # Held again afterwards: a new due renewal waits.
    sql(naming.system_name(staging), "UPDATE wp_actionscheduler_actions SET status='pending'")
    cron_request(staging)
    assert action_status(staging) == "pending"
    # The command runs it once too (audited as the command), and leaves it held.
    out, err = io.StringIO(), io.StringIO()
    call_command("run_held_work", staging.site.slug, staging.slug, "--wait", stdout=out, stderr=err)
    job = Job.objects.get(pk=out.getvalue().strip())
    assert job.status == "succeeded" and "due Action Scheduler actions left: 0" in err.getvalue(), err.getvalue()
    entry = AuditEntry.objects.get(action="environment.run_scheduled", job=job)
    assert entry.actor == "manage.py run_held_work" and entry.result == AuditResult.COMPLETED
    assert action_status(staging) == "complete"
    assert payment_api.requests == []
    with pytest.raises(CommandError, match="conflict"):
        call_command("run_held_work", staging.site.slug, "production", stdout=io.StringIO(), stderr=io.StringIO())


def _the_request_log_is_read_as_hostile(api_client, staging):
    """The log is the site's to write: links are not followed, anything but a
    record is skipped, an oversized file is read only at its end."""
    user = naming.system_name(staging)
    log = Path(naming.root(staging)) / "logs" / "outgoing-requests.log"

    def as_site(code: str, data: str = ""):
        subprocess.run(["runuser", "-u", user, "--", "python3", "-c", code], input=data, text=True, check=True, cwd="/")

    # A link to a file root can read and the site cannot: refused, nothing of it listed.
    as_site(f"import os; os.unlink({str(log)!r}); os.symlink('/etc/shadow', {str(log)!r})")
    assert outgoing(api_client, staging) == []
    forged = {"time": "2026-01-01T00:00:00+00:00", "method": "GET", "host": "forged.example", "path": "/x",
              "blocked": False, "reason": "allow-list"}
    lines = [
        json.dumps(forged),
        "not json",
        json.dumps(dict(forged, host="<script>")),
        json.dumps(dict(forged, extra="field")),
        json.dumps(dict(forged, blocked="yes")),
        json.dumps(dict(forged, path="/" + "a" * 5000)),
        json.dumps([forged]),
    ]
    content = "x" * (400 * 1024) + "\n" + "\n".join(lines) + "\n"
    as_site(f"import os, sys; os.unlink({str(log)!r}); open({str(log)!r}, 'w').write(sys.stdin.read())", content)
    assert [row["host"] for row in outgoing(api_client, staging)] == ["forged.example"]
