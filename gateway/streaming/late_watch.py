"""Disconnect watching for requests whose answer is slow, started by one sweeper instead of a timer each.

A non-streaming request must notice a client that leaves, to cancel its upstream request; but most
answers come quickly, and a watcher task (~40 us) or even a timer (~5 us on uvloop) per request is a
cost every request pays for the few that are slow. So a request registers its (not yet started)
`DisconnectWatch` here, a dict insert; every `delay` seconds one sweeper starts the watches of requests
waiting longer than `delay`. A client that leaves is noticed within 2 x `delay` of its request's start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from gateway.streaming.asgi_streamer import DisconnectWatch


class LateWatches:
    __slots__ = ("_pending", "_task", "delay")

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._pending: dict[DisconnectWatch, float] = {}  # watch -> time.monotonic() it was added
        self._task: asyncio.Task[None] | None = None

    def add(self, watch: DisconnectWatch) -> None:
        self._pending[watch] = time.monotonic()

    def discard(self, watch: DisconnectWatch) -> None:
        self._pending.pop(watch, None)

    def start(self) -> None:
        """Start the sweeper (the app's lifespan owns it: `aclose` on shutdown)."""
        if self._task is None:
            self._task = asyncio.create_task(self._sweep(), name="gateway-late-watches")

    async def _sweep(self) -> None:
        pending = self._pending
        while True:
            await asyncio.sleep(self.delay)
            if not pending:
                continue
            due = time.monotonic() - self.delay
            for watch, since in list(pending.items()):
                if since <= due:
                    del pending[watch]
                    watch.start()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
