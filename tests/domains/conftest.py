"""A real ACME server (pebble, Let's Encrypt's test server) and a real DNS
server (dnsmasq) on loopback for the domain tests (tests/domains/servers.py),
and the panel's ACME and resolver settings pointed at them. For the preview
domain's wildcard certificate (DNS-01): an authoritative knotd taking RFC 2136
updates and a pebble of its own that asks it."""

import pytest

import uuid

from tests.domains.servers import PREVIEW_ZONE, start_dns, start_knot, start_pebble, stop
from tests.nodes.fixtures import *  # noqa: F401,F403

@pytest.fixture(scope="session")
def dns_server(tmp_path_factory):
    """dnsmasq on 127.0.0.1 on a free port: "127.0.0.1:<port>"."""
    address, process = start_dns(tmp_path_factory.mktemp("dns"))
    try:
        yield address
    finally:
        stop(process)


@pytest.fixture(scope="session")
def pebble(tmp_path_factory, dns_server):
    server, process = start_pebble(tmp_path_factory.mktemp("pebble"), dns_server)
    try:
        yield server
    finally:
        stop(process)


@pytest.fixture
def acme(settings, pebble, dns_server):
    """The panel asks pebble for certificates and dnsmasq for DNS."""
    settings.ACME_FROM_ENVIRONMENT = {"directory_url": pebble.directory, "ca_bundle": pebble.ca_bundle,
                                      "dns_resolvers": dns_server}
    return pebble


@pytest.fixture(scope="session")
def dns01_servers(tmp_path_factory):
    """(Knot, Pebble): knotd authoritative for <random>.preview.test, and a
    pebble whose DNS is that knotd (it checks the _acme-challenge TXT record
    certbot's rfc2136 plugin puts there)."""
    knot, knot_process = start_knot(tmp_path_factory.mktemp("knot"), f"w{uuid.uuid4().hex[:8]}.{PREVIEW_ZONE}")
    try:
        server, pebble_process = start_pebble(tmp_path_factory.mktemp("pebble-dns01"), knot.address)
        try:
            yield knot, server
        finally:
            stop(pebble_process)
    finally:
        stop(knot_process)

