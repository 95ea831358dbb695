"""scripts/bench magic-login: latency of POST /api/environments/{id}/magic-login
against the same token command over a plain, reused SSH connection.

- api_ms_p50: median latency of the API call (authentication, audit, SSH to
  the node, the WordPress helper creating the token);
- floor_ms_p50: in the same run, the node's token program (wp_login.py) run
  over a paramiko connection opened once and reused;
- ratio: api / floor.

BENCH_SAMPLES sets the sample size (default 30).
"""

import base64
import json
import os
import statistics
import sys
import time

from scripts.benchmarks import node_support
from scripts.benchmarks.queue import say

SAMPLES = int(os.environ.get("BENCH_SAMPLES", "30"))


def main():
    node_support.setup_django()
    import paramiko

    from apps.environments import naming
    from apps.jobs import runner
    from apps.nodes import keys

    node = node_support.local_node()
    client = node_support.api_client()
    environment = node_support.created_site("Magic bench", "magic")

    api = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        response = client.post(f"/api/environments/{environment.id}/magic-login")
        api.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            sys.exit(f"bench: magic-login answered {response.status_code}: {response.content!r}")

    ssh = paramiko.SSHClient()
    key_type, key_data = node.host_key.split()[:2]
    ssh.get_host_keys().add(f"[127.0.0.1]:{node.ssh_port}", key_type, paramiko.PKey.from_type_string(key_type, base64.b64decode(key_data)))
    ssh.connect("127.0.0.1", port=node.ssh_port, username="root", pkey=keys.private_key(),
                allow_agent=False, look_for_keys=False)
    request = json.dumps({"system_name": naming.system_name(environment), "root": naming.root(environment),
                          "url": environment.preview_url, "lifetime": 60})
    floor = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        stdin, stdout, _ = ssh.exec_command(f"python3 {node_support.NODE_LIB}/wp_login.py")
        stdin.write(request)
        stdin.channel.shutdown_write()
        output = stdout.read().decode()
        floor.append((time.perf_counter() - started) * 1000)
        if "RESULT " not in output:
            sys.exit(f"bench: the plain token command failed: {output[-300:]}")
    ssh.close()

    delete = client.delete(f"/api/sites/{environment.site_id}")
    runner.run_job(delete.json()["job_id"])
    api_p50, floor_p50 = statistics.median(api), statistics.median(floor)
    say(f"api ms: {[round(x) for x in api]}")
    say(f"floor ms: {[round(x) for x in floor]}")
    print(
        f"BENCH magic-login samples={SAMPLES} api_ms_p50={api_p50:.0f} floor_ms_p50={floor_p50:.0f} "
        f"ratio={api_p50 / floor_p50:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
