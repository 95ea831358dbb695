"""Shared set-up of the benchmarks that use the real local node: Django with
node-friendly settings, this machine registered and provisioned over SSH,
an API client, and running node programs directly (for the floors)."""

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

LOG_DIR = Path(tempfile.mkdtemp(prefix="pressluft-bench-logs-"))
NODE_LIB = os.environ.get("PRESSLUFT_NODE_LIB_DIR", "/usr/local/lib/pressluft")


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pressluft.settings")
    os.environ.setdefault("PRESSLUFT_LOG_LEVEL", "WARNING")
    # As in the tests: WordPress from Debian's package, listeners on loopback,
    # no firewall on this machine.
    os.environ.setdefault("PRESSLUFT_WORDPRESS_CORE", "directory:/usr/share/wordpress")
    os.environ.setdefault("PRESSLUFT_NODE_LISTEN_ADDRESS", "127.0.0.1")
    os.environ.setdefault("PRESSLUFT_NODE_APPLY_FIREWALL", "false")
    # The deploy benchmark's repository is a directory on this machine.
    os.environ.setdefault("PRESSLUFT_GIT_ALLOW_LOCAL_REPOSITORIES", "true")
    # The benchmarks call the API through DRF's test client (host "testserver").
    os.environ.setdefault("PRESSLUFT_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    # test_noop tells when the worker is up; worker processes inherit this.
    os.environ.setdefault("PRESSLUFT_JOB_HANDLER_MODULES", "tests.jobhandlers")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # Worker processes must share the secret key (signed django-q2 messages).
    os.environ["PRESSLUFT_SECRET_KEY"] = settings.SECRET_KEY


def local_node():
    """Register this machine over the benchmark's sshd and provision it."""
    from apps.jobs import runner
    from apps.jobs.models import Job
    from apps.nodes import keys, services
    from apps.nodes.models import Node

    authorized = os.environ["PRESSLUFT_TEST_AUTHORIZED_KEYS"]
    Path(authorized).write_text(keys.public_key() + "\n")
    node = Node.objects.filter(is_local=True).first()
    if node is None:
        node = services.register_node(
            name="local", hostname="127.0.0.1", ssh_port=int(os.environ["PRESSLUFT_TEST_SSH_PORT"]),
            public_ipv4="127.0.0.1", is_local=True,
        )
    if node.status != "active":
        job = services.provision_node(node)
        runner.run_job(str(job.pk))
        job = Job.objects.get(pk=job.pk)
        if job.status != "succeeded":
            sys.exit(f"bench: provisioning failed: {job.error_code} {job.error_message}")
        node.refresh_from_db()
    return node


def api_client():
    from rest_framework.test import APIClient

    from apps.accounts.models import User
    from apps.accounts.services import create_api_token

    user = User.objects.filter(email="bench@localhost").first() or User.objects.create_superuser(
        "bench@localhost", "bench-password-unused"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_token(user, 'bench').plaintext}")
    return client


def wait_until(predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            sys.exit(f"bench: gave up after {timeout} s")
        time.sleep(interval)


def job_ended(job_id) -> bool:
    from apps.jobs.choices import TERMINAL
    from apps.jobs.models import Job

    return Job.objects.filter(pk=job_id, status__in=TERMINAL).exists()


def wait_for_worker(workers):
    """The worker is up once it has run a no-op job."""
    from apps.jobs.models import Job

    from apps.jobs.services import enqueue_job

    job = enqueue_job("test_noop")
    deadline = time.monotonic() + 60
    while not job_ended(job.pk):
        if workers.process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"bench: the worker did not start\n{workers.tail()}")
        time.sleep(0.05)
    assert Job.objects.get(pk=job.pk).status == "succeeded"


def http_status(url: str) -> int | None:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
    try:
        connection.request("GET", "/", headers={"Host": parts.hostname})
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_for_200(url: str, timeout: float, job_id=None, workers=None):
    deadline = time.monotonic() + timeout
    while http_status(url) != 200:
        if job_id is not None and job_ended(job_id):
            from apps.jobs.models import Job

            job = Job.objects.get(pk=job_id)
            if job.status != "succeeded":
                sys.exit(f"bench: job {job.job_type} {job.status}: {job.error_code} {job.error_message}")
        if workers is not None and workers.process.poll() is not None:
            sys.exit(f"bench: the worker exited\n{workers.tail()}")
        if time.monotonic() > deadline:
            sys.exit(f"bench: {url} did not answer 200 within {timeout} s")
        time.sleep(0.02)


def run_node_program(program: str, params: dict) -> dict:
    """Run an installed node program here, as the panel would over SSH."""
    result = subprocess.run(
        ["python3", f"{NODE_LIB}/{program}"], input=json.dumps(params), capture_output=True, text=True
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not lines[-1].startswith("RESULT "):
        sys.exit(f"bench: {program} failed ({result.returncode}): {result.stdout[-500:]} {result.stderr[-500:]}")
    return json.loads(lines[-1][len("RESULT "):])


def created_site(name: str, slug_prefix: str):
    """A new site on the local node, created by running its job here; returns
    its production environment."""
    import uuid

    from apps.jobs import runner
    from apps.jobs.models import Job
    from apps.sites import services as sites

    job = sites.create_site(name=name, slug=f"{slug_prefix}-{uuid.uuid4().hex[:8]}")
    runner.run_job(str(job.pk))
    job = Job.objects.get(pk=job.pk)
    if job.status != "succeeded":
        sys.exit(f"bench: site_create failed: {job.error_code} {job.error_message}")
    return job.environment
