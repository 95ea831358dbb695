"""scripts/bench domain-add: how long attaching a domain takes through the
panel, against certbot alone with the same ACME server.

- panel_s_p50: median time from ``POST /api/environments/{id}/domains`` until
  ``https://<domain>/`` answers 200 with a certificate chaining to the ACME
  server's root (API, job queue, worker, SSH, DNS check, server block,
  certbot, HTTPS server block, the site's URLs rewritten to the new primary
  domain, caches purged);
- floor_s_p50: in the same run, ``certbot certonly --webroot`` alone for a new
  hostname whose challenge path Nginx already serves (the ACME exchange the
  panel's job also does);
- ratio: panel / floor.

The ACME server is pebble and the DNS server dnsmasq, both on loopback
(tests/domains/servers.py); the node is this machine, reached over SSH on
loopback. Every domain added is removed again (not timed). BENCH_DOMAINS sets
the sample size (default 5).
"""

import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from scripts.benchmarks import node_support
from scripts.benchmarks.queue import Workers, say

SAMPLES = int(os.environ.get("BENCH_DOMAINS", "5"))
FLOOR_VHOST = "/etc/nginx/sites-enabled/pressluft-bench-floor-acme.conf"


def https_status(hostname: str, root_pem: str) -> int | None:
    import http.client

    context = ssl.create_default_context(cadata=root_pem)
    try:
        with socket.create_connection(("127.0.0.1", 443), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=hostname) as tls:
                connection = http.client.HTTPConnection(hostname)
                connection.sock = tls
                connection.request("GET", "/", headers={"Host": hostname})
                return connection.getresponse().status
    except (OSError, ssl.SSLError):
        return None


def panel_sample(client, environment, root_pem, workers) -> float:
    from apps.domains.models import Domain
    from apps.jobs.models import Job

    hostname = f"bench-{uuid.uuid4().hex[:8]}.pointed.test"
    started = time.perf_counter()
    response = client.post(f"/api/environments/{environment.pk}/domains", {"hostname": hostname}, format="json")
    if response.status_code != 202:
        sys.exit(f"bench: POST domains answered {response.status_code}: {response.content!r}")
    job_id = response.json()["job_id"]
    deadline = time.monotonic() + 300
    seen = []
    while (status := https_status(hostname, root_pem)) != 200:
        if not seen or seen[-1][0] != status:
            seen.append((status, time.perf_counter() - started))
        job = Job.objects.get(pk=job_id)
        if job.status == "failed" or workers.process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"bench: domain_add {job.status}: {job.error_code} {job.error_message}\n{workers.tail()}")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    node_support.wait_until(lambda: node_support.job_ended(job_id), 120)
    if os.environ.get("BENCH_VERBOSE"):
        job = Job.objects.get(pk=job_id)
        for line in job.log_lines.order_by("seq"):
            say(f"  +{(line.created_at - job.created_at).total_seconds():6.2f} s  {line.message[:100]}")
        say(f"  https answers before 200 (status, since): {[(code, round(at, 2)) for code, at in seen]}")
        say(f"  https 200 at +{elapsed:.2f} s")
    removal = client.delete(f"/api/domains/{Domain.objects.get(hostname=hostname).pk}").json()["job_id"]
    node_support.wait_until(lambda: node_support.job_ended(removal), 300)
    return elapsed


def floor_sample(pebble, config_dir: Path) -> float:
    """certbot alone: the same webroot challenge, the same ACME server."""
    hostname = f"floor-{uuid.uuid4().hex[:8]}.pointed.test"
    argv = ["certbot", "certonly", "--non-interactive", "--agree-tos", "--register-unsafely-without-email",
            "--webroot", "-w", "/var/lib/pressluft/acme", "--server", pebble.directory, "--cert-name", hostname,
            "-d", hostname, "--key-type", "ecdsa", "--config-dir", str(config_dir / "config"),
            "--work-dir", str(config_dir / "work"), "--logs-dir", str(config_dir / "logs")]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "REQUESTS_CA_BUNDLE": pebble.ca_bundle}
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"bench: certbot alone failed: {done.stderr[-800:]}")
    return elapsed


def main():
    from tests.domains.servers import start_dns, start_pebble, stop

    work = Path(tempfile.mkdtemp(prefix="pressluft-bench-acme-"))
    dns_address, dns_process = start_dns(work)
    pebble, pebble_process = start_pebble(work, dns_address)
    os.environ.update(PRESSLUFT_ACME_DIRECTORY_URL=pebble.directory, PRESSLUFT_ACME_CA_BUNDLE=pebble.ca_bundle,
                      PRESSLUFT_DNS_RESOLVERS=dns_address)
    try:
        node_support.setup_django()
        node_support.local_node()
        client = node_support.api_client()
        environment = node_support.created_site("Domain bench", "domains")
        root_pem = pebble.root_pem()
        # certbot alone gets a server block answering challenges for its hostnames.
        Path("/var/lib/pressluft/acme").mkdir(parents=True, exist_ok=True)
        Path(FLOOR_VHOST).write_text(
            "server {\n    listen 127.0.0.1:80;\n    server_name ~^floor-[0-9a-f]+\\.pointed\\.test$;\n"
            "    location ^~ /.well-known/acme-challenge/ { root /var/lib/pressluft/acme; try_files $uri =404; }\n"
            "    location / { return 404; }\n}\n")
        subprocess.run(["nginx", "-s", "reload"], check=True)
        panel, floor = [], []
        with Workers("runworker", node_support.LOG_DIR) as workers:
            node_support.wait_for_worker(workers)
            # One of each untimed first: ACME account registration, imports, caches.
            panel_sample(client, environment, root_pem, workers)
            floor_sample(pebble, work / "certbot")
            for index in range(SAMPLES):
                panel.append(panel_sample(client, environment, root_pem, workers))
                floor.append(floor_sample(pebble, work / "certbot"))
                say(f"domain {index + 1}/{SAMPLES}: panel {panel[-1]:.2f} s, certbot alone {floor[-1]:.2f} s")
            delete = client.delete(f"/api/sites/{environment.site_id}").json()["job_id"]
            node_support.wait_until(lambda: node_support.job_ended(delete), 300)
    finally:
        Path(FLOOR_VHOST).unlink(missing_ok=True)
        subprocess.run(["nginx", "-s", "reload"], check=False)
        stop(pebble_process)
        stop(dns_process)
        shutil.rmtree(work, ignore_errors=True)
    panel_p50, floor_p50 = statistics.median(panel), statistics.median(floor)
    say(json.dumps({"panel_s": panel, "floor_s": floor}))
    print(
        f"BENCH domain-add domains={SAMPLES} panel_s_p50={panel_p50:.2f} floor_s_p50={floor_p50:.2f} "
        f"ratio={panel_p50 / floor_p50:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
