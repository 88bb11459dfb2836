"""The upstream transport seam: what a provider needs from the wire, and nothing more.

A strict point of cut-off, as httpx's `_transports/base.py` is: a provider hands a `WireRequest` to its
`UpstreamTransport` and gets back a `WireResponse` whose head is in. Implementations: our HTTP/1.1 client
(`h1/`, every real upstream), the built-in mock provider (`mock.py`, in process), and `HttpxTransport`
(its own module), which wraps any httpx transport (tests' `httpx.MockTransport`). Transports raise
httpx's exceptions; `error_mapping.map_upstream_errors()` turns them into ours at the provider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.config.models import Timeouts


@dataclass(frozen=True, slots=True)
class WireTimeouts:
    """Limits for one request on the wire: `connect` (TCP and TLS), `read` (each wait for bytes, the head
    included), `write`, and `pool` (the wait for a free connection). None: no limit."""

    connect: float | None = None
    read: float | None = None
    write: float | None = None
    pool: float | None = None

    @classmethod
    def from_config(cls, timeouts: Timeouts, pool: float | None = None) -> WireTimeouts:
        """`pool`: the provider's `pool.acquire_timeout` (None: as long as a connect may take)."""
        wait = timeouts.connect if pool is None else pool
        return cls(connect=timeouts.connect, read=timeouts.read, write=timeouts.write, pool=wait)

    def as_httpx_extension(self) -> dict[str, float | None]:
        return {"connect": self.connect, "read": self.read, "write": self.write, "pool": self.pool}


@dataclass(slots=True)  # not frozen: one per request, and a frozen dataclass costs 1 us more to build
class WireRequest:
    """One request to send. `headers` hold every header but Host and Content-Length (the transport sets
    those from `url` and `content`). Nothing changes it once built."""

    method: str
    url: str
    headers: Sequence[tuple[str, str]]
    content: bytes
    timeouts: WireTimeouts


@dataclass(frozen=True, slots=True)
class PoolState:
    """How many upstream connections a provider's pool holds: lent to a request, and idle (kept alive);
    and how many requests wait for one (the cap is reached)."""

    in_use: int
    idle: int
    waiting: int = 0


class WireResponse(Protocol):
    """An upstream answer whose head is in; the body comes decoded (no content-encoding left)."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]:
        """Names lower-cased."""
        ...

    @property
    def complete(self) -> bool:
        """The whole body is known to have arrived (False when the transport cannot tell)."""
        ...

    async def aread(self) -> bytes: ...
    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Each read's bytes as they arrive, without re-chunking."""
        ...

    async def aclose(self) -> None:
        """Give the connection back (or close it); idempotent, called on every path."""
        ...


class UpstreamTransport(Protocol):
    """What a provider holds: one per provider, owning its connections."""

    async def send(self, request: WireRequest) -> WireResponse:
        """Send `request`; return once the response head is in. The caller must `aclose()` the answer."""
        ...

    def pool_state(self) -> PoolState: ...

    async def aclose(self) -> None: ...
