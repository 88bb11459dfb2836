"""`pool.max_concurrent_requests`: a cap on requests in flight to one provider, whatever its transport.

A request that finds the cap reached waits at most `acquire_timeout` for a slot (first come, first
served), then is refused with `UpstreamCapacity` (503 `upstream_capacity`; the route fails over).
"""

from __future__ import annotations

import asyncio
from collections import deque

from gateway.errors import UpstreamCapacity


class ConcurrencyLimit:
    __slots__ = ("_in_flight", "_limit", "_timeout", "_waiters", "provider")

    def __init__(self, limit: int, timeout: float, provider: str) -> None:
        self._limit = limit
        self._timeout = timeout
        self._in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.provider = provider

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    async def acquire(self) -> None:
        if self._in_flight < self._limit and not self.waiting:
            self._in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout):
                await waiter  # `release` hands its slot over: `_in_flight` stays counted
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as we gave up: pass it on
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise UpstreamCapacity(
                    f"provider {self.provider!r} is at capacity: {self._limit} requests in flight "
                    f"(waited {self._timeout:g}s; pool.max_concurrent_requests)"
                ) from None
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot goes to the next waiter as it is
                return
        self._in_flight -= 1
