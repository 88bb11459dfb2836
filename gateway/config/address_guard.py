"""The SSRF guard: addresses a provider must not point at unless it sets `allow_private_network: true`.

Link-local addresses and the cloud metadata services (169.254.169.254 and its IPv6 and vendor cousins,
and their DNS names) hand out the machine's own credentials to whoever asks from it, so a route file (or
an environment variable in one) that points a provider there is refused when loaded, and a name that
resolves there is refused when connecting (`providers/h1/connect.py`). Loopback and private (RFC 1918,
ULA) addresses stay allowed: Ollama on localhost and in-cluster services are normal upstreams.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

REFUSED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local: AWS, GCP, Azure, OCI metadata, ECS tasks
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
)
# Names of metadata services (compared without a trailing dot, case-insensitive).
REFUSED_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
OPT_IN = "allow_private_network"


def refused_address(address: Address) -> str | None:
    """Why the guard refuses `address` (IPv4-mapped IPv6 read as its IPv4), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for network in REFUSED_NETWORKS:
        if address.version == network.version and address in network:
            return f"{address} is in {network} (link-local or cloud metadata)"
    return None


def refused_host(host: str) -> str | None:
    """Why the guard refuses the host of a URL as written (a metadata name or a refused IP literal,
    dotted or in the legacy integer forms such as 2852039166), or None. Names are checked again, as
    resolved, when connecting."""
    name = host.strip("[]").rstrip(".").lower()
    if name in REFUSED_NAMES:
        return f"{name!r} is a cloud metadata service name"
    address = _literal(name)
    return refused_address(address) if address is not None else None


def refused_url(url: str) -> str | None:
    """Why the guard refuses a provider URL's host, or None (also for a URL it cannot read)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return refused_host(host) if host else None


def _literal(name: str) -> Address | None:
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])  # a zone id (fe80::1%eth0) does not matter
    except ValueError:
        pass
    if name and all(ch in "0123456789abcdefx." for ch in name) and name[0].isdigit():
        try:  # what the C resolver accepts as IPv4: 2852039166, 0xa9fea9fe, 169.254.43518
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None
