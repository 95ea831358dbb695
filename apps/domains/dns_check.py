"""Does a hostname point at its node? Asked with dnspython of the resolvers
of the Panel settings (or PRESSLUFT_DNS_RESOLVERS, which wins; empty: the
panel's own, apps/domains/acme_config.py), before a domain is written anywhere."""

from dataclasses import dataclass

import dns.exception
import dns.nameserver
import dns.resolver

from apps.domains import acme_config
from apps.jobs.errors import JobError

LIFETIME = 5.0


def _resolver() -> dns.resolver.Resolver:
    configured = acme_config.effective().dns_resolvers
    if not configured:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port) for address, port in configured]
    resolver.lifetime = LIFETIME
    resolver.cache = None
    return resolver


def _addresses(resolver, hostname: str, record: str) -> set[str]:
    try:
        answer = resolver.resolve(hostname, record, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return set()
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise JobError("dns_lookup_failed", f"The DNS resolvers gave no answer for {hostname} {record} ({exc}).") from None
    return {item.address for item in answer}


@dataclass
class DnsVerdict:
    points: bool
    problem: str


def check(hostname: str, node) -> DnsVerdict:
    """A: exactly the node's public IPv4. AAAA: the node has no public IPv6
    the panel knows of, so any AAAA record would send IPv6 clients (and the
    ACME server, which prefers IPv6) elsewhere."""
    resolver = _resolver()
    found_a = _addresses(resolver, hostname, "A")
    found_aaaa = _addresses(resolver, hostname, "AAAA")
    expected = node.public_ipv4
    problems = []
    if found_a != {expected}:
        now = f"it resolves to {', '.join(sorted(found_a))}" if found_a else "it has no A record"
        problems.append(f"create the DNS record A {hostname} → {expected} ({now})")
    if found_aaaa:
        problems.append(f"remove the AAAA record(s) of {hostname} ({', '.join(sorted(found_aaaa))}): "
                        f"the node {node.name} has no IPv6 address")
    return DnsVerdict(not problems, "; ".join(problems))


def require(hostname: str, node) -> None:
    verdict = check(hostname, node)
    if not verdict.points:
        raise JobError("dns_not_pointing", f"{hostname} does not point at {node.name}: {verdict.problem}.")
