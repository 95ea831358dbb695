"""A real ACME server (pebble, Let's Encrypt's test server) and a real DNS
server (dnsmasq) on loopback for the domain tests (tests/domains/servers.py),
and the panel's ACME and resolver settings pointed at them."""

import pytest

from tests.domains.servers import start_dns, start_pebble, stop
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
