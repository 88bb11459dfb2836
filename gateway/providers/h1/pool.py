"""Upstream connections by origin: idle ones kept for reuse, a cap on the total, waiters for a free slot.

A request that finds the cap reached waits at most `acquire_timeout` (about a second), then fails fast
with `httpx.PoolTimeout`, which providers answer as 503 `upstream_capacity` (and the route fails over):
never a silent queue as long as a connect timeout.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

import httpx

from gateway.config.models import PoolLimits
from gateway.providers.h1.connect import Connector
from gateway.providers.h1.connection import Connection, H1Response
from gateway.providers.h1.target import Origin, Target
from gateway.providers.transport import PoolState, WireTimeouts


class Pool:
    """Connections by origin: idle ones kept (most recently used first), a cap on the total, waiters for a
    free slot in arrival order."""

    def __init__(self, limits: PoolLimits, connector: Connector | None = None) -> None:
        self._max = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._acquire_timeout = limits.acquire_timeout
        self._connector = connector if connector is not None else Connector()
        self._idle: dict[Origin, list[Connection]] = {}
        self._idle_count = 0
        self._in_use = 0  # lent to a request, or connecting for one
        self._open: set[Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self._sweep: asyncio.TimerHandle | None = None  # closes idle connections past their expiry

    def state(self) -> PoolState:
        waiting = sum(1 for waiter in self._waiters if not waiter.done())
        return PoolState(self._in_use, self._idle_count, waiting)

    async def request(
        self,
        method: bytes,
        target: Target,
        headers: Iterable[tuple[str, str]],
        content: bytes,
        timeouts: WireTimeouts,
    ) -> H1Response:
        """Send a request and return its response once the head is in; the caller must `aclose()` it."""
        head = _request_head(method, target, headers, len(content))
        connection = await self._acquire(target, timeouts.connect)
        response = H1Response(connection, timeouts.read, bodiless=method == b"HEAD")
        try:
            connection.send(response, head + content if content else head)
            if connection.writes_paused:  # never for a body that fits the socket buffer at once
                await connection.drain(timeouts.write)
                if connection.closed:
                    raise httpx.WriteError("the upstream closed the connection while the request was sent")
            await response.wait_head()
        except BaseException:
            response.discard()
            raise
        return response

    async def _acquire(self, target: Target, connect: float | None) -> Connection:
        if self._closed:
            raise httpx.ConnectError("the provider's connection pool is closed")
        origin = target.origin
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._acquire_timeout
        while True:
            connection = self._take_idle(origin, loop.time())
            if connection is not None:
                self._in_use += 1
                return connection
            if self._max is None or self._in_use + self._idle_count < self._max:
                break
            if self._idle_count:  # full, but with idle connections to other origins: make room
                self._evict_one()
                continue
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # woken just as we gave up: hand the free slot on
                else:
                    waiter.cancel()  # stays in the queue; `_wake_one` skips it
                if isinstance(exc, TimeoutError):
                    raise httpx.PoolTimeout(
                        f"all {self._max} connections to the provider are in use "
                        f"(waited {self._acquire_timeout:g}s; pool.max_connections)"
                    ) from None
                raise
        self._in_use += 1
        try:
            return await self._connect(target, connect)
        except BaseException:
            self._in_use -= 1
            self._wake_one()
            raise

    def _take_idle(self, origin: Origin, now: float) -> Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            self._idle_count -= 1
            if connection.closed or (self._expiry is not None and now - connection.idle_since > self._expiry):
                connection.close()
                continue
            return connection
        return None

    def _evict_one(self) -> None:
        oldest: Connection | None = None
        for idle in self._idle.values():
            if idle and (oldest is None or idle[0].idle_since < oldest.idle_since):
                oldest = idle[0]
        if oldest is not None:
            self._idle[oldest.origin].remove(oldest)
            self._idle_count -= 1
            oldest.close()

    async def _connect(self, target: Target, timeout: float | None) -> Connection:
        connection = Connection(self, target.origin)
        await self._connector.connect(connection, target, timeout)
        self._open.add(connection)
        return connection

    def release(self, connection: Connection, reusable: bool) -> None:
        """A request is done with its connection: keep it idle for the next one, or close it."""
        self._in_use -= 1
        if (
            reusable
            and not self._closed
            and not connection.closed
            and (self._max_idle is None or self._idle_count < self._max_idle)
        ):
            loop = asyncio.get_running_loop()
            connection.idle_since = loop.time()
            self._idle.setdefault(connection.origin, []).append(connection)
            self._idle_count += 1
            if self._sweep is None and self._expiry is not None:
                self._sweep = loop.call_at(connection.idle_since + self._expiry, self._close_expired)
        else:
            connection.close()
        self._wake_one()

    def _close_expired(self) -> None:
        """Close the idle connections kept longer than `keepalive_expiry`, then come back when the next
        one expires. Without it, connections left over from a burst (never the most recently used, so
        never taken again) would stay open as long as the upstream allows."""
        self._sweep = None
        assert self._expiry is not None
        loop = asyncio.get_running_loop()
        now, next_expiry = loop.time(), None
        for idle in self._idle.values():
            while idle and now - idle[0].idle_since >= self._expiry:  # oldest first
                connection = idle.pop(0)
                self._idle_count -= 1
                connection.close()
            if idle:
                expiry = idle[0].idle_since + self._expiry
                next_expiry = expiry if next_expiry is None else min(next_expiry, expiry)
        if next_expiry is not None and not self._closed:
            self._sweep = loop.call_at(next_expiry, self._close_expired)

    def forget(self, connection: Connection) -> None:
        """The connection closed (either side); an idle one leaves the pool."""
        self._open.discard(connection)
        idle = self._idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)
            self._idle_count -= 1
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
        self._idle_count = 0
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # it finds the pool closed


def _request_head(method: bytes, target: Target, headers: Iterable[tuple[str, str]], length: int) -> bytes:
    parts = [f"{name}: {value}\r\n" for name, value in headers]
    lines = "".join(parts)
    # Every CR and LF must be one this function wrote: a header that carries its own would smuggle a
    # header or a request into the upstream connection.
    if lines.count("\r") != len(parts) or lines.count("\n") != len(parts):
        raise httpx.LocalProtocolError("a request header contains a line break")
    try:
        encoded = lines.encode("latin-1")
    except UnicodeEncodeError:
        raise httpx.LocalProtocolError("a request header is not latin-1 text") from None
    return b"%s %s HTTP/1.1\r\nhost: %s\r\ncontent-length: %d\r\n%s%s\r\n" % (
        method,
        target.path,
        target.host_header,
        length,
        target.proxy_header,
        encoded,
    )
