"""Opening an upstream connection: addresses tried in turn (Happy Eyeballs), an optional proxy tunnel, TLS.

Everything before TLS happens on the raw non-blocking socket (`loop.sock_*`), so a CONNECT tunnel and a
direct connection end the same way: `loop.create_connection(sock=...)` with the pool's TLS context.
uvloop has no `happy_eyeballs_delay`, hence the small stagger of our own (RFC 8305: families interleaved,
the next address started when the previous one has not connected within the delay or has failed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment

import httpx

from gateway.config.address_guard import OPT_IN, refused_address

if TYPE_CHECKING:
    from gateway.providers.h1.target import Target

# RFC 8305's recommended "Connection Attempt Delay".
ATTEMPT_DELAY = 0.25
# A proxy's answer to CONNECT is a short head; anything longer is not a proxy we can talk to.
MAX_CONNECT_ANSWER = 16 * 1024


class AddressRefused(httpx.ConnectError):
    """The SSRF guard refused every address of the upstream (`config/address_guard.py`): nothing was
    connected to. `map_upstream_errors()` maps it to `UpstreamAddressRefused`."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """An HTTP proxy: CONNECT tunnels for https upstreams, absolute-form requests for http ones."""

    host: str
    port: int
    authorization: str | None = None  # the Proxy-Authorization value (Basic), from the URL's userinfo

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"proxy URL must be http://host:port (got {parts.scheme or 'no'} scheme)")
        authorization = None
        if parts.username is not None:
            userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(userinfo.encode()).decode("ascii")
        return cls(parts.hostname, parts.port or 80, authorization)

    def __repr__(self) -> str:  # never the credentials
        return f"Proxy({self.host}:{self.port}{', with credentials' if self.authorization else ''})"


class ProxyChoice:
    """Which proxy (if any) a request to an origin goes through: the provider's own `proxy:`, or, when the
    provider opts in, `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` as read when the provider was built."""

    __slots__ = ("_environment", "_explicit")

    def __init__(self, explicit: Proxy | None = None, *, from_environment: bool = False) -> None:
        self._explicit = explicit
        self._environment = getproxies_environment() if from_environment and explicit is None else None

    def for_origin(self, scheme: str, host: str) -> Proxy | None:
        if self._explicit is not None:
            return self._explicit
        environment = self._environment
        if not environment:
            return None
        url = environment.get(scheme)
        if url is None or bypasses_proxy(host, environment.get("no", "")):
            return None
        return Proxy.from_url(url if "://" in url else f"http://{url}")


def bypasses_proxy(host: str, no_proxy: str) -> bool:
    """`NO_PROXY` as curl reads it: `*`, or comma-separated names that match the host or a domain it is
    in (`example.com` and `.example.com` both match `api.example.com`); a port in an entry is ignored."""
    host = host.lower().rstrip(".")
    for entry in no_proxy.replace(" ", "").lower().split(","):
        if entry == "*":
            return True
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry  # host:port, not an IPv6 address
        name = name.strip("[]").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_ip_literal(host: str) -> bool:
    return ip_literal(host) is not None


async def resolve(host: str, port: int) -> list[AddressInfo]:
    """Every TCP address of `host`: an IP literal as it is, a name by the loop's resolver (in a thread:
    it may be slow, and a burst of connections must not queue behind it for an address it knows)."""
    address = ip_literal(host)
    if address is not None:
        if address.version == 6:
            return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port))]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host!r}: {exc}") from exc
    return [(family, kind, proto, name, address) for family, kind, proto, name, address in infos]


def _interleave(infos: Sequence[AddressInfo]) -> list[AddressInfo]:
    """Alternate address families, keeping the resolver's order within each (RFC 8305 section 4)."""
    by_family: dict[int, list[AddressInfo]] = {}
    for info in infos:
        by_family.setdefault(info[0], []).append(info)
    queues = list(by_family.values())
    ordered: list[AddressInfo] = []
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


async def connect_address(info: AddressInfo) -> socket.socket:
    family, kind, proto, _, address = info
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.get_running_loop().sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


async def _first_to_connect(infos: list[AddressInfo]) -> socket.socket:
    if len(infos) == 1:
        return await connect_address(infos[0])
    attempts: list[asyncio.Task[socket.socket]] = []
    errors: list[OSError] = []
    pending = list(infos)
    try:
        while pending or attempts:
            if pending:
                attempts.append(asyncio.ensure_future(connect_address(pending.pop(0))))
            done, _ = await asyncio.wait(
                attempts, timeout=ATTEMPT_DELAY if pending else None, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                attempts.remove(task)
                error = task.exception()
                if error is None:
                    return task.result()
                errors.append(error if isinstance(error, OSError) else OSError(str(error)))
        raise OSError("; ".join(dict.fromkeys(str(error) for error in errors)) or "no address to connect to")
    finally:
        for task in attempts:
            task.cancel()
            with contextlib.suppress(BaseException):
                (await task).close()  # connected just as another one won


async def open_tunnel(sock: socket.socket, proxy: Proxy, host: str, port: int) -> None:
    """Ask the proxy on `sock` for a tunnel to `host:port`; raises `httpx.ProxyError` unless it says 2xx."""
    loop = asyncio.get_running_loop()
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    answer = b""
    while b"\r\n\r\n" not in answer:
        data = await loop.sock_recv(sock, 4096)
        if not data:
            raise httpx.ProxyError(f"proxy {proxy.host}:{proxy.port} closed the connection during CONNECT")
        answer += data
        if len(answer) > MAX_CONNECT_ANSWER:
            raise httpx.ProxyError(f"proxy {proxy.host}:{proxy.port} sent an over-long answer to CONNECT")
    head, _, rest = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise httpx.ProxyError(f"proxy {proxy.host}:{proxy.port} answered CONNECT with {status_line!r}")
    if not 200 <= int(parts[1]) < 300:
        raise httpx.ProxyError(f"proxy {proxy.host}:{proxy.port} refused the tunnel: {status_line}")
    if rest:  # the upstream cannot speak before we do (TLS, or HTTP): a proxy that sends more is broken
        raise httpx.ProxyError(f"proxy {proxy.host}:{proxy.port} sent data after its CONNECT answer")


def guarded(infos: Sequence[AddressInfo], host: str) -> list[AddressInfo]:
    """The addresses of `host` the SSRF guard lets through; `AddressRefused` when it lets none."""
    allowed: list[AddressInfo] = []
    refused: list[str] = []
    for info in infos:
        address = ip_literal(str(info[4][0]).split("%", 1)[0])
        reason = refused_address(address) if address is not None else None
        if reason is None:
            allowed.append(info)
        else:
            refused.append(reason)
    if not allowed and refused:
        raise AddressRefused(
            f"{host} resolves to a refused address ({refused[0]}); set {OPT_IN}: true on the provider "
            "to allow it"
        )
    return allowed


class Connector:
    """How one pool reaches an origin: directly or through its proxy, with the pool's own TLS context
    (made on the first https connection, so an http-only provider loads no CA bundle).

    Unless `allow_private_network`, a direct connection goes only to addresses the SSRF guard lets
    through, checked after resolution (a name can resolve anywhere, and again differently later). Through
    a proxy the proxy resolves the upstream's name: only the name as written is checked (by the config)."""

    __slots__ = ("_make_context", "_passed_literals", "_ssl_context", "allow_private_network", "server_name")

    def __init__(
        self,
        make_context: Callable[[], ssl.SSLContext] = httpx.create_ssl_context,
        server_name: str | None = None,
        *,
        allow_private_network: bool = False,
    ) -> None:
        self._make_context = make_context
        self._ssl_context: ssl.SSLContext | None = None
        self.server_name = server_name
        self.allow_private_network = allow_private_network
        # IP literal hosts the guard let through: a literal's verdict never changes, and parsing and
        # checking it again cost more than the rest of a burst's new connection. A provider has a few.
        self._passed_literals: set[str] = set()

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = self._make_context()
        return self._ssl_context

    async def connect(self, protocol: asyncio.Protocol, target: Target, timeout: float | None) -> None:
        """Connect `protocol` to `target`'s origin (through `target.proxy` when set); raises
        `httpx.ConnectTimeout`, `httpx.ConnectError` or `httpx.ProxyError`."""
        origin, proxy = target.origin, target.proxy
        tls = origin.scheme == "https"
        host, port = (proxy.host, proxy.port) if proxy is not None else (origin.host, origin.port)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                literal = proxy is None and (host in self._passed_literals or is_ip_literal(host))
                if literal and host not in self._passed_literals:
                    if not self.allow_private_network:
                        guarded(await resolve(host, port), host)
                    self._passed_literals.add(host)
                if literal:
                    # One address and no tunnel: the loop connects in one call (C under uvloop), the
                    # cost of every new connection a burst of streams opens.
                    await loop.create_connection(
                        lambda: protocol,
                        host,
                        port,
                        ssl=self.ssl_context() if tls else None,
                        server_hostname=(self.server_name or origin.host) if tls else None,
                    )
                    return
                infos = await resolve(host, port)
                if proxy is None and not self.allow_private_network:
                    infos = guarded(infos, host)
                # Each address in turn (IPv6 and IPv4 interleaved) with a short stagger; the first to
                # connect wins and the others are closed.
                sock = await _first_to_connect(_interleave(infos))
                try:
                    if proxy is not None and tls:
                        await open_tunnel(sock, proxy, origin.host, origin.port)
                    await loop.create_connection(
                        lambda: protocol,
                        sock=sock,
                        ssl=self.ssl_context() if tls else None,
                        server_hostname=(self.server_name or origin.host) if tls else None,
                    )
                except BaseException:
                    sock.close()
                    raise
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connect timeout ({host}:{port})") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            via = f" (through proxy {proxy.host}:{proxy.port})" if proxy is not None else ""
            raise httpx.ConnectError(f"{origin.host}:{origin.port}{via}: {exc}") from exc
