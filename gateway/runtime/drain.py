"""Graceful shutdown's bookkeeping: which requests are in flight, and ending them when the grace is over.

The server (`api/server.py`) starts the drain on the first SIGTERM or SIGINT (`begin`), waits for the
requests in flight up to the grace, and then calls `cut`: every stream still open ends with a final error
event in its API's format (its relay's `cut`), every other request still waiting is cancelled (the
middleware, `api/inflight.py`, answers it 503 if its head was not sent). Nothing here is touched per chunk:
a request costs one dict insert and one delete. Used from the event loop thread only, except `begin` and
`hurry`, which only set attributes (they run in a signal handler).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Protocol

from gateway.errors import GatewayError, ShuttingDown

CUT_MESSAGE = "the gateway is shutting down: its shutdown grace ended before the answer did"


class Cuttable(Protocol):
    """A stream that can be ended with a final error event (both relays)."""

    def cut(self, error: GatewayError) -> None: ...


class InflightRequest:
    """One request in flight: its task, its API (for the counts of the last log line) and, once it
    streams, the relay that ends it."""

    __slots__ = ("api", "cut", "stream", "task")

    def __init__(self, task: asyncio.Task[Any] | None, api: str) -> None:
        self.task = task
        self.api = api
        self.stream: Cuttable | None = None
        self.cut = False  # ended by the drain


class Drain:
    """The requests in flight and the drain's state and counts. One per app (on its state)."""

    __slots__ = ("_requests", "cut_counts", "draining", "finished", "grace", "hurried", "started_with")

    def __init__(self) -> None:
        self._requests: dict[InflightRequest, None] = {}  # insertion-ordered set
        self.draining = False  # set once, at the first signal: /health answers 503 from then on
        self.hurried = False  # a second signal: end the grace now
        self.grace = 0.0
        self.started_with = 0  # requests in flight when the drain began
        self.finished = 0  # requests that ended on their own during the drain
        self.cut_counts: Counter[str] = Counter()  # requests the drain ended, by API

    def enter(self, api: str) -> InflightRequest:
        entry = InflightRequest(asyncio.current_task(), api)
        self._requests[entry] = None
        return entry

    def leave(self, entry: InflightRequest) -> None:
        del self._requests[entry]
        if self.draining:
            if entry.cut:
                self.cut_counts[entry.api] += 1
            else:
                self.finished += 1

    @property
    def in_flight(self) -> int:
        return len(self._requests)

    def begin(self, grace: float) -> None:
        """Start draining (signal-safe: attributes only)."""
        if not self.draining:
            self.grace = grace
            self.started_with = len(self._requests)
            self.draining = True

    def hurry(self) -> None:
        """End the grace now (a second signal; signal-safe)."""
        self.hurried = True

    def cut(self) -> int:
        """End every request still in flight; returns how many."""
        error = ShuttingDown(CUT_MESSAGE)
        entries = [entry for entry in self._requests if not entry.cut]
        for entry in entries:
            entry.cut = True
            if entry.stream is not None:
                entry.stream.cut(error)
            elif entry.task is not None:
                entry.task.cancel(CUT_MESSAGE)
        return len(entries)

    def summary(self) -> str:
        """`drained: N finished, M cut (chat=2, messages=1)`."""
        total = sum(self.cut_counts.values())
        line = f"drained: {self.finished} finished, {total} cut"
        if total:
            line += " (" + ", ".join(f"{api}={count}" for api, count in sorted(self.cut_counts.items())) + ")"
        return line
