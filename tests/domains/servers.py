"""pebble (ACME) and dnsmasq (DNS) on loopback, started for the domain tests
(tests/domains/conftest.py) and scripts/bench domain-add.

DNS: every name under pointed.test resolves to 127.0.0.1 (the local node's
public address), every name under elsewhere.test to 203.0.113.7 (a
documentation address: nothing is ever sent there), other .test names do not
exist. pebble resolves through the same server and validates HTTP-01 on port
80 of 127.0.0.1, the node's Nginx."""

import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

POINTED = "pointed.test"
ELSEWHERE = "elsewhere.test"
ELSEWHERE_ADDRESS = "203.0.113.7"


def _free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _free_dns_port() -> int:
    """A port free for both UDP and TCP (dnsmasq listens on both)."""
    while True:
        port = _free_port(socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue


def _wait(check, process, log, what):
    deadline = time.monotonic() + 30
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_dns(work: Path):
    """dnsmasq on 127.0.0.1 on a free port: ("127.0.0.1:<port>", process)."""
    if shutil.which("dnsmasq") is None:
        raise RuntimeError("dnsmasq is missing: scripts/test installs it (dnsmasq-base)")
    port = _free_dns_port()
    log = work / "dnsmasq.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["dnsmasq", "--keep-in-foreground", f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
             "--no-resolv", "--no-hosts", f"--pid-file={work}/dnsmasq.pid", "--local=/test/",
             f"--address=/{POINTED}/127.0.0.1", f"--address=/{ELSEWHERE}/{ELSEWHERE_ADDRESS}"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def answers():
        import dns.nameserver
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", port)]
        resolver.lifetime = 1
        try:
            return bool(resolver.resolve(f"probe.{POINTED}", "A"))
        except Exception:
            return False

    try:
        _wait(answers, process, log, "dnsmasq")
    except BaseException:
        stop(process)
        raise
    return f"127.0.0.1:{port}", process


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Pebble:
    def __init__(self, directory: str, ca_bundle: str, management: str):
        self.directory = directory
        self.ca_bundle = ca_bundle
        self.management = management

    def root_pem(self) -> str:
        """pebble's root certificate (a new one at every start): what issued certificates chain to."""
        context = ssl.create_default_context(cafile=self.ca_bundle)
        with urllib.request.urlopen(f"{self.management}/roots/0", context=context, timeout=10) as answer:
            return answer.read().decode()


def start_pebble(work: Path, dns_server: str):
    """pebble with a CA of this run for its own HTTPS: (Pebble, process)."""
    if shutil.which("pebble") is None:
        raise RuntimeError("pebble is missing: scripts/test installs it (Debian package pebble)")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=pressluft test ACME CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=work)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "localhost.key", "-out", "localhost.csr", "-subj", "/CN=localhost", cwd=work)
    (work / "localhost.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                                        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "localhost.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "30", "-extfile", "localhost.ext", "-out", "localhost.pem", cwd=work)
    acme_port, management_port, tls_port = _free_port(), _free_port(), _free_port()
    (work / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{acme_port}", "managementListenAddress": f"127.0.0.1:{management_port}",
        "certificate": str(work / "localhost.pem"), "privateKey": str(work / "localhost.key"),
        "httpPort": 80, "tlsPort": tls_port, "ocspResponderURL": "", "externalAccountBindingRequired": False,
    }}))
    log = work / "pebble.log"
    environment = {"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    with open(log, "wb") as out:
        process = subprocess.Popen(["pebble", "-config", str(work / "pebble.json"), "-dnsserver", dns_server],
                                   stdout=out, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
    directory = f"https://127.0.0.1:{acme_port}/dir"
    context = ssl.create_default_context(cafile=str(work / "ca.pem"))
    try:
        _wait(lambda: urllib.request.urlopen(directory, context=context, timeout=2).status == 200, process, log,
              "pebble")
    except BaseException:
        stop(process)
        raise
    return Pebble(directory, str(work / "ca.pem"), f"https://127.0.0.1:{management_port}"), process


# --- DNS-01: an authoritative server taking RFC 2136 updates ------------------------------

PREVIEW_ZONE = "preview.test"  # the preview domains of the tests are <tag>.preview.test


class Knot:
    """knotd authoritative for one zone on 127.0.0.1, accepting dynamic
    updates (RFC 2136) signed with its TSIG key (hmac-sha256)."""

    def __init__(self, zone: str, port: int, key_name: str, secret: str):
        self.zone = zone
        self.address = f"127.0.0.1:{port}"
        self.port = port
        self.key_name = key_name
        self.secret = secret


def start_knot(work: Path, zone: str):
    """knotd of its own (own config, storage, socket): (Knot, process)."""
    import base64
    import os

    if shutil.which("knotd") is None:
        raise RuntimeError("knotd is missing: scripts/test installs it (Debian packages knot, knot-dnsutils)")
    port = _free_dns_port()
    key_name, secret = "pressluft-test-key", base64.b64encode(os.urandom(32)).decode()
    (work / f"{zone}.zone").write_text(
        f"$ORIGIN {zone}.\n$TTL 60\n@ SOA ns1 hostmaster 1 3600 600 86400 60\n@ NS ns1\nns1 A 127.0.0.1\n"
        "* A 127.0.0.1\n")
    (work / "knot.conf").write_text(f"""server:
    rundir: "{work}"
    pidfile: "{work}/knot.pid"
    listen: 127.0.0.1@{port}
control:
    listen: "{work}/knot.sock"
database:
    storage: "{work}"
log:
  - target: "{work}/knot.log"
    any: info
key:
  - id: {key_name}
    algorithm: hmac-sha256
    secret: {secret}
acl:
  - id: update-acl
    key: {key_name}
    action: update
template:
  - id: default
    storage: "{work}"
zone:
  - domain: {zone}
    file: "{work}/{zone}.zone"
    acl: update-acl
""")
    log = work / "knotd.out"
    with open(log, "wb") as out:
        process = subprocess.Popen(["knotd", "-c", str(work / "knot.conf")], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)

    def answers():
        import dns.nameserver
        import dns.resolver

        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver("127.0.0.1", port)]
        resolver.lifetime = 1
        try:
            return bool(resolver.resolve(zone, "SOA"))
        except Exception:
            return False

    try:
        _wait(answers, process, log, "knotd")
    except BaseException:
        stop(process)
        raise
    return Knot(zone, port, key_name, secret), process
