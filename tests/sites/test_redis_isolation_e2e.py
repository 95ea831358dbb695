"""End to end on the real local node: one site's PHP, running in its own
PHP-FPM pool as its own Linux user with the Redis credentials from its own
wp-config.php (what a malicious plugin has), attacks another site's Redis
keys and the shared server. Redis answers NOPERM; a connection without a
password gets nothing; deleting the site removes its Redis user and keys."""

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from apps.environments import naming
from apps.jobs import runner
from apps.sites.models import Site
from tests.sites.test_php_pool_isolation_e2e import php_probe
from tests.sites.test_site_lifecycle_e2e import create_site, job_log

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN_SECRET = Path("/etc/pressluft/redis-admin.secret")
ACL_FILE = Path("/etc/pressluft/redis-users.acl")

# Run through Nginx and the site's own pool: each entry of the plan is a Redis
# command; the answer is its reply, or "ERR:<error>" when Redis refused it.
REDIS_PROBE = r"""<?php
require __DIR__ . '/wp-load.php';
$plan = json_decode(base64_decode('@@PLAN@@'), true);
$redis = new Redis();
$redis->connect('127.0.0.1', 6379, 2);
$answers = [];
if ($plan['authenticate']) {
    try {
        $answers[] = $redis->auth(WP_REDIS_PASSWORD);
    } catch (Throwable $error) {
        $answers[] = 'ERR:' . $error->getMessage();
    }
}
foreach ($plan['commands'] as $command) {
    try {
        $reply = $redis->rawCommand(...$command);
        $error = $redis->getLastError();
        $redis->clearLastError();
        $answers[] = $error !== null ? 'ERR:' . $error : $reply;
    } catch (Throwable $error) {
        $answers[] = 'ERR:' . $error->getMessage();
    }
}
echo 'ANSWER:' . json_encode($answers);
"""


def redis_probe(environment, commands, authenticate=True) -> list:
    """The replies to ``commands``, sent by the environment's own PHP (FPM pool, its Linux user)."""
    plan = base64.b64encode(json.dumps({"authenticate": authenticate, "commands": commands}).encode()).decode()
    return php_probe(environment, REDIS_PROBE.replace("@@PLAN@@", plan))


def redis_admin(*args: str) -> str:
    """A command as the node programs' Redis administrator."""
    done = subprocess.run(["redis-cli", "--user", "pressluft", *args], capture_output=True, text=True, check=True,
                          env=dict(os.environ, REDISCLI_AUTH=ADMIN_SECRET.read_text().strip()))
    return done.stdout.strip()


def wp_config_credentials(environment) -> tuple[str, str]:
    config = (Path(naming.root(environment)) / "shared" / "wp-config.php").read_text()
    user, password = re.search(r"define\( 'WP_REDIS_PASSWORD', array\( '(\w+)', '(\w+)' \) \);", config).groups()
    return user, password


@pytest.fixture
def attacker_and_victim(api_client, local_node):
    sites = [create_site(api_client, "Attacker Arts", "attacker"), create_site(api_client, "Victim Vintage", "victim")]
    yield sites
    for site, _ in sites:
        if Site.objects.filter(pk=site.pk).exists():
            runner.run_job(api_client.delete(f"/api/sites/{site.id}").json()["job_id"])


def refused(answer) -> bool:
    # DEBUG is also off server-wide (enable-debug-command), which Redis checks before the user's rules.
    return isinstance(answer, str) and answer.startswith(("ERR:NOPERM", "ERR:ERR DEBUG command not allowed"))


def test_a_sites_redis_credentials_reach_only_its_own_keys(attacker_and_victim, api_client):
    (site_a, attacker), (_, victim) = attacker_and_victim
    a_key = f"{naming.redis_key_prefix(attacker)}probe"
    b_key = f"{naming.redis_key_prefix(victim)}secret"
    b_list = f"{naming.redis_key_prefix(victim)}list"

    # The victim uses its own keys with its own credentials, as its object cache would.
    assert redis_probe(victim, [["SET", b_key, "victim's cached data"], ["RPUSH", b_list, "1"],
                                ["GET", b_key]]) == [True, True, 1, "victim's cached data"]

    own = redis_probe(attacker, [["SET", a_key, "mine"], ["GET", a_key], ["SET", f"{a_key}2", "x"],
                                 ["DEL", f"{a_key}2"], ["INFO", "server"]])
    assert own[:5] == [True, True, "mine", True, 1], own
    assert "redis_version:" in own[5]  # object caches read the version from INFO

    attacks = [
        # the other site's keys, directly and through commands that touch several keys
        ["GET", b_key], ["SET", b_key, "poisoned"], ["DEL", b_key], ["UNLINK", b_key], ["APPEND", b_key, "x"],
        ["EXPIRE", b_key, "1"], ["DUMP", b_key], ["MGET", a_key, b_key], ["RENAME", a_key, b_key],
        ["COPY", b_key, a_key], ["LRANGE", b_list, "0", "-1"], ["SUNIONSTORE", a_key, b_list],
        # naming or counting every site's keys
        ["KEYS", "*"], ["SCAN", "0"], ["SCAN", "0", "MATCH", "pressluft_*"], ["RANDOMKEY"], ["DBSIZE"],
        # reading keys through patterns, scripts, other databases
        ["SORT", b_list, "BY", "nosort", "GET", "pressluft_*"], ["EVAL", "return redis.call('GET', KEYS[1])", "1", b_key],
        ["EVAL", "return redis.call('KEYS', '*')", "0"], ["FUNCTION", "LIST"], ["SELECT", "1"], ["MOVE", a_key, "1"],
        # the whole server: flushing, settings, users, other connections, channels
        ["FLUSHALL"], ["FLUSHDB"], ["SWAPDB", "0", "1"], ["CONFIG", "GET", "*"],
        ["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        ["ACL", "LIST"], ["ACL", "SETUSER", naming.system_name(attacker), "~*"], ["ACL", "WHOAMI"],
        ["DEBUG", "OBJECT", a_key], ["SLOWLOG", "GET"], ["CLIENT", "LIST"], ["CLIENT", "KILL", "TYPE", "normal"],
        ["CLIENT", "TRACKING", "on", "BCAST"], ["MEMORY", "STATS"], ["PUBSUB", "CHANNELS"], ["PUBLISH", "news", "x"],
    ]
    answers = redis_probe(attacker, attacks)
    assert answers[0] is True  # authenticated as itself
    allowed = [(command, answer) for command, answer in zip(attacks, answers[1:]) if not refused(answer)]
    assert allowed == []
    # The victim's data is untouched.
    assert redis_admin("GET", b_key) == "victim's cached data"
    assert redis_admin("LRANGE", b_list, "0", "-1") == "1"

    # Without a password nothing at all, not even from the site's own PHP.
    anonymous = redis_probe(attacker, [["GET", b_key], ["PING"], ["AUTH", "default", ""]], authenticate=False)
    assert anonymous[0].startswith("ERR:NOAUTH") and anonymous[1].startswith("ERR:NOAUTH"), anonymous
    assert "WRONGPASS" in anonymous[2]
    # Nor can the site read the administrator's secret or the password hashes.
    for path in (ADMIN_SECRET, ACL_FILE):
        attempt = subprocess.run(["runuser", "-u", naming.system_name(attacker), "--", "cat", str(path)],
                                 check=False, capture_output=True, text=True)
        assert attempt.returncode != 0 and "Permission denied" in attempt.stderr, (path, attempt.stderr)
    assert oct(ADMIN_SECRET.stat().st_mode & 0o777) == "0o600" and ADMIN_SECRET.stat().st_uid == 0
    # Only hashes on disk: the password itself is in wp-config.php alone.
    user, password = wp_config_credentials(attacker)
    assert user == naming.system_name(attacker)
    assert password not in ACL_FILE.read_text() and f"user {user} on #" in ACL_FILE.read_text()

    # Deleting site A removes its Redis user (its password is refused from then on) and its keys.
    response = api_client.delete(f"/api/sites/{site_a.id}")
    assert response.status_code == 202
    assert runner.run_job(response.json()["job_id"]) == "succeeded", job_log(response.json()["job_id"])
    assert not Site.objects.filter(pk=site_a.pk).exists()
    assert redis_admin("ACL", "GETUSER", user) == ""
    assert f"user {user} " not in ACL_FILE.read_text()
    assert redis_admin("EXISTS", a_key) == "0"
    stale = subprocess.run(["redis-cli", "--user", user, "GET", a_key], check=False, capture_output=True,
                           text=True, env=dict(os.environ, REDISCLI_AUTH=password))
    assert "WRONGPASS" in stale.stderr + stale.stdout
    # Site B goes on as before.
    assert redis_probe(victim, [["GET", b_key]]) == [True, "victim's cached data"]
