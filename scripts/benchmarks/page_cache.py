"""scripts/bench page-cache: requests per second for a WordPress home page
served from the FastCGI page cache, against what Nginx does at best here.

- cached_rps: the home page of a new site, every answer a cache HIT;
- floor_rps: in the same run, the same Nginx server block serving the very
  same bytes as a static file (no cache lookup, no PHP);
- ratio: cached / floor (goal >= 0.8);
- php_rps: the same page with the cache bypassed (a logged-in cookie sends
  every request to PHP-FPM and WordPress; 4 connections), for scale.

wrk (Debian's package) makes the load: BENCH_SECONDS per run (default 5),
BENCH_CONNECTIONS (default 16), BENCH_ROUNDS rounds of floor then cached
(default 3, the medians are reported).
"""

import http.client
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from scripts.benchmarks import node_support
from scripts.benchmarks.queue import say

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PHP_CONNECTIONS = 4
STATIC_NAME = "pressluft-bench-static.html"
BYPASS_COOKIE = "wordpress_logged_in_bench=nobody"


def fetch(host: str, path: str, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", 80, timeout=30)
    try:
        connection.request("GET", path, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.getheader("X-FastCGI-Cache"), response.read()
    finally:
        connection.close()


def wrk(host: str, path: str, headers: dict | None = None, connections: int = CONNECTIONS) -> float:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", "--timeout", "30s", "-H", f"Host: {host}"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run([*command, f"http://127.0.0.1{path}"], capture_output=True, text=True, check=True)
    # Read errors alone are connections Nginx closed after keepalive_requests; anything else is a failure.
    errors = re.search(r"Socket errors: connect (\d+), read \d+, write (\d+), timeout (\d+)", done.stdout)
    if "Non-2xx or 3xx responses" in done.stdout or (errors and any(int(n) for n in errors.groups())):
        sys.exit(f"bench: wrk saw errors on {path}:\n{done.stdout}")
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", done.stdout).group(1))


def main():
    node_support.setup_django()
    from apps.environments import naming
    from apps.jobs import runner

    node_support.local_node()
    client = node_support.api_client()
    environment = node_support.created_site("Page cache bench", "pagecache")
    host = urlsplit(environment.preview_url).hostname
    static = Path(naming.root(environment)) / "current" / STATIC_NAME
    try:
        if not environment.fastcgi_cache_enabled:
            sys.exit("bench: the new site has no page cache")
        fetch(host, "/")
        status, cache, page = fetch(host, "/")
        if (status, cache) != (200, "HIT"):
            sys.exit(f"bench: the home page is not served from the cache ({status}, {cache})")
        static.write_bytes(page)
        static.chmod(0o644)
        if fetch(host, f"/{STATIC_NAME}")[2] != page:
            sys.exit("bench: the static copy is not served as it is")
        if fetch(host, "/", {"Cookie": BYPASS_COOKIE})[1] != "BYPASS":
            sys.exit("bench: the logged-in cookie does not bypass the cache")

        floor, cached = [], []
        for _ in range(ROUNDS):
            floor.append(wrk(host, f"/{STATIC_NAME}"))
            cached.append(wrk(host, "/"))
        # As many connections as the site's PHP-FPM pool has workers at most: more would only queue.
        php = wrk(host, "/", {"Cookie": BYPASS_COOKIE}, connections=PHP_CONNECTIONS)
        if fetch(host, "/")[1] != "HIT":
            sys.exit("bench: the home page left the cache during the run")
    finally:
        static.unlink(missing_ok=True)
        runner.run_job(client.delete(f"/api/sites/{environment.site_id}").json()["job_id"])

    floor_rps, cached_rps = statistics.median(floor), statistics.median(cached)
    say(f"floor rps: {[round(x) for x in floor]}")
    say(f"cached rps: {[round(x) for x in cached]}")
    print(
        f"BENCH page-cache bytes={len(page)} connections={CONNECTIONS} seconds={SECONDS} rounds={ROUNDS} "
        f"cached_rps={cached_rps:.0f} floor_rps={floor_rps:.0f} ratio={cached_rps / floor_rps:.2f} "
        f"php_rps={php:.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
