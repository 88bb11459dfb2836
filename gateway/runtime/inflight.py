"""Count requests in flight by config generation, so a reload can close old providers once they are idle.

Every HTTP request is counted under the generation that was current when it arrived (the number of
reloads applied so far). A reload swaps the runtime and advances the generation in one step; the
providers it retired were reachable only from runtimes of earlier generations, so they may be closed as
soon as no request of those generations is left. The counting itself happens in a pure ASGI middleware
around the whole app (`api/inflight.py`), so a streamed answer counts until its last byte, and the request
handlers need not know.
"""

from __future__ import annotations

import asyncio


class InflightTracker:
    """Requests in flight per generation. Used from the event loop thread only."""

    __slots__ = ("_counts", "_waiters", "generation")

    def __init__(self) -> None:
        self.generation = 0
        self._counts: dict[int, int] = {}
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def enter(self) -> int:
        generation = self.generation
        self._counts[generation] = self._counts.get(generation, 0) + 1
        return generation

    def leave(self, generation: int) -> None:
        remaining = self._counts[generation] - 1
        if remaining:
            self._counts[generation] = remaining
            return
        del self._counts[generation]
        if self._waiters:
            self._wake()

    def advance(self) -> int:
        """Start a new generation; returns the one that just ended (what a reload's retirees wait for)."""
        self.generation += 1
        return self.generation - 1

    def in_flight(self, up_to: int | None = None) -> int:
        """Requests in flight that started in generation `up_to` or earlier (all when None)."""
        counts = self._counts.items()
        return sum(count for generation, count in counts if up_to is None or generation <= up_to)

    async def drained(self, up_to: int) -> None:
        """Return once no request that started in generation `up_to` or earlier is in flight."""
        if not self.in_flight(up_to):
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((up_to, waiter))
        try:
            await waiter
        finally:
            if (up_to, waiter) in self._waiters:
                self._waiters.remove((up_to, waiter))

    def _wake(self) -> None:
        oldest = min(self._counts, default=None)
        waiting = []
        for up_to, waiter in self._waiters:
            if oldest is None or oldest > up_to:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((up_to, waiter))
        self._waiters = waiting
