"""What both relays (`relay.StreamRelay`, `event_relay.EventRelay`) do with their upstream body, whatever
they make of its events: read it a chunk at a time, where the shutdown's cut can reach the reading task;
drain its rest after the last frame, so the connection goes back to the pool; and keep how the stream
ended (done, the client gone, cut).
"""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.errors import GatewayError
from gateway.streaming.callbacks import StreamCallback
from gateway.streaming.relay_protocol import ByteStream
from gateway.streaming.stats import StreamStats

# After the last event the upstream body usually has only its terminating chunk left; reading it lets the
# connection go back to the pool instead of being closed (a connection whose answer was not read to its
# end cannot be reused). Bounded, so a provider that keeps the connection open after its last event
# cannot hold the stream.
DRAIN_TIMEOUT = 0.25
DRAIN_BYTES = 64 * 1024


class UpstreamRelay:
    """The upstream side of a relay; a subclass frames the events (`prime`, `frames`, `aclose`)."""

    __slots__ = (
        "_chunks",
        "_closed",
        "_cut",
        "_done",
        "_exhausted",
        "_reading",
        "_task",
        "_upstream",
        "_upstream_closed",
        "on_finish",
        "stats",
    )

    def __init__(
        self, upstream: ByteStream, stats: StreamStats, on_finish: list[StreamCallback] | None
    ) -> None:
        self._upstream = upstream
        self._chunks = upstream.__aiter__()
        self._done = False  # the client's closing frames (`[DONE]`, `message_stop`) went out
        self._exhausted = False  # the upstream body has ended
        self._upstream_closed = False
        self._closed = False
        self._cut: GatewayError | None = None  # the shutdown grace is over: end with this
        self._reading = False  # awaiting the upstream (where a cut may cancel the frames task)
        self._task: asyncio.Task[Any] | None = None  # the task iterating `frames()`, set by it
        self.stats = stats
        self.on_finish: list[StreamCallback] = on_finish if on_finish is not None else []

    @property
    def done(self) -> bool:
        """The closing frames have been handed to the client (or are in the piece just handed out)."""
        return self._done

    def mark_disconnected(self) -> None:
        """The client went away before the stream ended."""
        if self.stats.status == "ok" and not self._done:
            self.stats.status = "disconnected"

    def cut(self, error: GatewayError) -> None:
        """End the stream with `error` as its final event (the shutdown grace is over): at once when it
        waits for the upstream, else before its next upstream read."""
        if self._done or self._closed or self._cut is not None:
            return
        self._cut = error
        if self._reading and self._task is not None:
            self._task.cancel()

    async def _next_chunk(self) -> bytes | None:
        """The next upstream read, or None at the end of the body."""
        if self._cut is not None:
            raise self._cut
        self._reading = True
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self._exhausted = True
            return None
        finally:
            self._reading = False
        self.stats.upstream_bytes += len(chunk)
        return chunk

    async def _release_upstream(self) -> None:
        """After the closing frames went to the client: read the rest of the upstream body (its
        terminating chunk) and close it, so the connection is back in the pool before the client's
        response ends."""
        if self._upstream_closed:
            return
        try:
            if not self._exhausted and not self._upstream.complete:
                left = DRAIN_BYTES
                try:
                    async with asyncio.timeout(DRAIN_TIMEOUT):
                        while left > 0 and (chunk := await self._next_chunk()) is not None:
                            left -= len(chunk)
                except (TimeoutError, GatewayError):
                    pass  # the connection is closed instead of reused; the client already has everything
        finally:
            self._upstream_closed = True
            await self._upstream.aclose()

    async def _close_upstream(self) -> None:
        """Close the upstream response if `_release_upstream` has not (a failed or abandoned stream)."""
        if not self._upstream_closed:
            self._upstream_closed = True
            await self._upstream.aclose()
