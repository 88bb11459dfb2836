"""What runs when a stream ends (usage accounting, metrics, the access record), for both relays."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.streaming.stats import StreamStats

logger = logging.getLogger("gateway.stream")

StreamCallback = Callable[[StreamStats], Awaitable[None] | None]


async def run_finish_callbacks(on_finish: list[StreamCallback], stats: StreamStats) -> None:
    """Run a stream's finish callbacks once; one that fails is logged and does not stop the others."""
    callbacks = list(on_finish)
    # Emptied, not replaced: the list is usually the request context's, and its callbacks hold that
    # context, a cycle that would leave each request to the cyclic garbage collector.
    on_finish.clear()
    for callback in callbacks:
        try:
            result = callback(stats)
            if result is not None:
                await result
        except Exception:  # usage accounting or metrics must not break the close path
            logger.exception("stream %s: finish callback %r failed", stats.stream_id, callback)
    # The failure's traceback holds the relay's frames, which hold these stats: read by the callbacks,
    # then let go, so a failed stream is freed at once rather than by the cyclic collector.
    stats.failure = None
    stats.streamed = None  # what the client got, kept for a cut stream's estimate: read, let go
