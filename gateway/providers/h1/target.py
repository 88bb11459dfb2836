"""Where a request goes: an upstream URL parsed once into the origin to connect to and the request line."""

from __future__ import annotations

from typing import NamedTuple

import httpx


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class Target(NamedTuple):
    """A URL parsed once: where to connect, the request target and the Host header."""

    origin: Origin
    path: bytes
    host_header: bytes


def parse_target(url: str) -> Target:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise httpx.UnsupportedProtocol(f"not an http(s) URL: {url!r}")
    default_port = 443 if parsed.scheme == "https" else 80
    port = parsed.port or default_port
    host = parsed.raw_host
    if b":" in host:  # an IPv6 literal
        host = b"[" + host + b"]"
    host_header = host if port == default_port else host + b":%d" % port
    return Target(Origin(parsed.scheme, parsed.host, port), parsed.raw_path, host_header)
