"""Where a request goes: an upstream URL parsed once into the origin to connect to and the request line."""

from __future__ import annotations

from typing import NamedTuple

import httpx

from gateway.providers.h1.connect import Proxy, ProxyChoice


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class Target(NamedTuple):
    """A URL parsed once: where to connect, the request target and the Host header; through a proxy,
    the proxy (a CONNECT tunnel for https; for http the absolute URL as request target, and the
    proxy's credentials as an extra header line)."""

    origin: Origin
    path: bytes
    host_header: bytes
    proxy: Proxy | None = None
    proxy_header: bytes = b""


def parse_target(url: str, proxies: ProxyChoice | None = None) -> Target:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise httpx.UnsupportedProtocol(f"not an http(s) URL: {url!r}")
    default_port = 443 if parsed.scheme == "https" else 80
    port = parsed.port or default_port
    host = parsed.raw_host
    if b":" in host:  # an IPv6 literal
        host = b"[" + host + b"]"
    host_header = host if port == default_port else host + b":%d" % port
    origin = Origin(parsed.scheme, parsed.host, port)
    proxy = proxies.for_origin(parsed.scheme, parsed.host) if proxies is not None else None
    if proxy is None:
        return Target(origin, parsed.raw_path, host_header)
    if parsed.scheme == "https":
        return Target(origin, parsed.raw_path, host_header, proxy)
    absolute = b"http://" + host_header + parsed.raw_path  # forwarding: the proxy needs the whole URL
    credentials = (
        b"proxy-authorization: %s\r\n" % proxy.authorization.encode() if proxy.authorization else b""
    )
    return Target(origin, absolute, host_header, proxy, credentials)
