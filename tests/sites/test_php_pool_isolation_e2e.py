"""End to end on the real local node: what a site's PHP can do from its own
PHP-FPM pool (through Nginx, as its own Linux user): no shared /tmp (its
temporary files stay in its own tmp/), no putenv, no mail outside production
(while WordPress's wp_mail on staging is held, not fatal), and in production
mail()'s fifth argument never reaches sendmail."""

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from apps.environments import naming
from apps.environments.models import Environment
from apps.jobs import runner
from tests.sites.test_site_lifecycle_e2e import create_site, http_get, job_log

pytestmark = pytest.mark.django_db(transaction=True)

TMP_PROBE = r"""<?php
$temp = tempnam(sys_get_temp_dir(), 'probe');
$answer = [
    'open_basedir' => ini_get('open_basedir'),
    'sys_temp_dir' => sys_get_temp_dir(),
    'tempnam' => $temp,
    'read_shared_tmp' => @file_get_contents('@@PLANTED@@'),
    'write_shared_tmp' => @file_put_contents('@@WRITTEN@@', 'from a site'),
    'list_shared_tmp' => @scandir('/tmp'),
    'force_extra_parameters' => ini_get('mail.force_extra_parameters'),
    'functions' => [],
];
foreach (['putenv', 'mail', 'mb_send_mail', 'exec', 'proc_open', 'popen'] as $name) {
    $answer['functions'][$name] = function_exists($name);
}
@unlink($temp);
echo 'ANSWER:' . json_encode($answer);
"""

WP_MAIL_PROBE = r"""<?php
require __DIR__ . '/wp-load.php';
$sent = wp_mail('customer@example.com', '@@SUBJECT@@', 'Sent from a PHP-FPM request');
$held = get_option('pressluft_held_mail', []);
try {
    mail('customer@example.com', 'bypassing wp_mail', 'body');
    $direct = 'sent';
} catch (Throwable $error) {
    $direct = get_class($error) . ': ' . $error->getMessage();
}
echo 'ANSWER:' . json_encode(['sent' => $sent, 'held' => end($held)['subject'] ?? null, 'direct' => $direct]);
"""


def php_probe(environment, code: str) -> dict:
    """Run ``code`` as a request to the environment, through Nginx and its own pool."""
    name = f"pool-probe-{uuid.uuid4().hex[:8]}.php"
    probe = Path(naming.root(environment)) / "current" / name
    probe.write_text(code)
    try:
        status, _, body, _ = http_get(environment.preview_url, f"/{name}?nocache={uuid.uuid4().hex}")
    finally:
        probe.unlink()
    assert status == 200 and "ANSWER:" in body, (status, body[:1000])
    return json.loads(body.split("ANSWER:", 1)[1])


@pytest.fixture
def production_and_staging(api_client, local_node):
    site, production = create_site(api_client, "Kappa Kitchen", "kappa")
    try:
        response = api_client.post(f"/api/sites/{site.id}/environments",
                                   {"name": "Staging", "slug": "staging", "type": "staging",
                                    "promotion_preset": "content-protect"}, format="json")
        assert response.status_code == 202, response.content
        assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
        yield production, Environment.objects.get(site=site, slug="staging")
    finally:
        runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])


def test_a_sites_php_has_its_own_temp_dir_and_neither_putenv_nor_staging_mail(production_and_staging):
    production, staging = production_and_staging
    planted = Path(f"/tmp/pressluft-planted-{uuid.uuid4().hex}")
    planted.write_text("left in /tmp by another site\n")
    planted.chmod(0o644)
    try:
        for environment in (production, staging):
            written = Path(f"/tmp/pressluft-written-{uuid.uuid4().hex}")
            answer = php_probe(environment, TMP_PROBE.replace("@@PLANTED@@", str(planted))
                               .replace("@@WRITTEN@@", str(written)))
            root = naming.root(environment)
            assert [path.rstrip("/") for path in answer["open_basedir"].split(":")] == [root, "/usr/share/php"]
            assert answer["read_shared_tmp"] is False and answer["write_shared_tmp"] is False
            assert answer["list_shared_tmp"] is False and not written.exists()
            assert answer["sys_temp_dir"] == f"{root}/tmp"
            assert answer["tempnam"].startswith(f"{root}/tmp/"), answer
            assert answer["force_extra_parameters"] == "-i"
            functions = answer["functions"]
            assert not any(functions[name] for name in ("putenv", "exec", "proc_open", "popen")), functions
            # Production sends its mail through mail(); nothing else does.
            assert functions["mail"] is functions["mb_send_mail"] is (environment == production), functions
    finally:
        planted.unlink()


def test_wordpress_mail_on_staging_is_held_not_fatal_without_mail(production_and_staging):
    _, staging = production_and_staging
    errors = Path(naming.root(staging)) / "logs" / "php-error.log"
    before = errors.read_text() if errors.exists() else ""
    subject = f"Order {uuid.uuid4().hex[:6]}"
    answer = php_probe(staging, WP_MAIL_PROBE.replace("@@SUBJECT@@", subject))
    assert answer["sent"] is False and answer["held"] == subject, answer
    # Code that goes around wp_mail finds no mail() to call.
    assert answer["direct"] == "Error: Call to undefined function mail()", answer
    after = errors.read_text() if errors.exists() else ""
    assert "Fatal" not in after[len(before):], after[len(before):]


def test_mails_fifth_argument_never_reaches_sendmail(production_and_staging):
    """The pool's mail.force_extra_parameters replaces what a caller passes as
    sendmail options (-X <file> would make sendmail write a log the site names).
    PHP's own mail() as the site's user, with a stand-in sendmail that records
    its command line: once as PHP does it without the setting, once with the
    pool's value."""
    production, _ = production_and_staging
    user = naming.system_name(production)
    pool = Path(naming.pool_path(production)).read_text()
    forced = next(line.split(" = ", 1)[1] for line in pool.splitlines()
                  if line.startswith("php_admin_value[mail.force_extra_parameters]"))
    scratch = Path(naming.root(production)) / "tmp" / f"sendmail-{uuid.uuid4().hex[:8]}"
    scratch.mkdir()
    recorder = scratch / "sendmail"
    recorder.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {scratch}/argv\ncat > /dev/null\n')
    recorder.chmod(0o755)
    shutil.chown(scratch, user, user)
    call = "mail('customer@example.com', 'subject', 'body', '', '-X/tmp/pressluft-sendmail.log');"

    def sendmail_argv(*settings: str) -> list[str]:
        (scratch / "argv").unlink(missing_ok=True)
        done = subprocess.run(["runuser", "-u", user, "--", "php", "-n", "-d", f"sendmail_path={recorder} -t -i",
                               *settings, "-r", call], check=False, capture_output=True, text=True,
                              env={"PATH": os.environ["PATH"]})
        assert done.returncode == 0, done.stderr
        return (scratch / "argv").read_text().split()

    try:
        assert "-X/tmp/pressluft-sendmail.log" in sendmail_argv()
        assert sendmail_argv("-d", f"mail.force_extra_parameters={forced}") == ["-t", "-i", "-i"]
    finally:
        shutil.rmtree(scratch)
