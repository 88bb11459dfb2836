"""The event relay: for every stream whose events the gateway must read one by one (a translated stream,
or a named-event API such as Anthropic Messages passed through).

Upstream bytes are parsed into named events (`EventParser`) and handed to the attempt's `StreamEvents`,
which says what the client gets for each. It has the same face as `StreamRelay` (`prime`, `frames`,
`aclose`, `mark_disconnected`, `done`, `stats`, `on_finish`), so the streamers and the dispatcher do not
know which one they hold. OpenAI chat to OpenAI chat keeps its faster relay (`relay.py`), which forwards
whole reads without looking at each event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any, Protocol

from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.streaming.callbacks import StreamCallback, run_finish_callbacks
from gateway.streaming.relay_protocol import ByteStream, cut_cause
from gateway.streaming.sse import EventParser
from gateway.streaming.stats import STREAMED_LIMIT, StreamStats
from gateway.streaming.upstream_relay import UpstreamRelay

logger = logging.getLogger("gateway.stream")


class StreamEvents(Protocol):
    """One stream's translation, event by event, into the client's API's frames. Pure: no I/O."""

    def feed(self, event: str, data: bytes) -> bytes:
        """The client's frames for one upstream event (`event` is its SSE name, "" when it has none):
        b"" when it gives the client nothing yet. Raises `UpstreamError` for a malformed event or an
        error event from the upstream (the relay then ends the stream with `error`)."""
        ...

    @property
    def ended(self) -> bool:
        """The upstream's last event has arrived (`[DONE]`, `message_stop`): the relay stops reading."""
        ...

    def end(self) -> bytes:
        """The client's closing frames, once: when `ended`, or at the end of the upstream body. Raises
        `UpstreamProtocolError` when the upstream's answer is not complete there."""
        ...

    def error(self, exc: GatewayError) -> bytes:
        """The one final error event in the client's API's format, for a failure after the first byte."""
        ...

    @property
    def usage(self) -> dict[str, Any] | None:
        """The usage seen so far, in the gateway's shape (OpenAI chat's: prompt_tokens, ...)."""
        ...


class EventRelay(UpstreamRelay):
    __slots__ = ("_events", "_parser", "_pending")

    def __init__(
        self,
        upstream: ByteStream,
        stats: StreamStats,
        events: StreamEvents,
        on_finish: list[StreamCallback] | None = None,
    ) -> None:
        super().__init__(upstream, stats, on_finish)
        self._parser = EventParser()
        self._events = events
        self._pending = b""  # frames made while priming, not yet handed out

    async def prime(self) -> None:
        """Read until the client has its first frame to get, so an upstream that fails before it can be
        retried or failed over. Raises `UpstreamError`."""
        stats = self.stats
        stats.connected = time.perf_counter()
        try:
            while not self._pending and not self._done:
                chunk = await self._next_chunk()
                if chunk is None:
                    if not self._pending:
                        self._pending = self._finish(self._parser.flush())
                    if not self._pending:
                        raise UpstreamProtocolError(
                            f"provider {stats.provider!r} closed the stream before any event"
                        )
                    return
                self._pending = self._translate(self._parser.feed(chunk))
        except GatewayError as exc:
            stats.status, stats.error = "error", exc.message
            raise
        except asyncio.CancelledError:
            stats.status, stats.error = "error", "cancelled before the first event"
            raise

    async def frames(self) -> AsyncGenerator[bytes, None]:
        """Client bytes: each upstream read's frames in one piece, then the closing frames, or one final
        error event after a failure. The caller closes the relay."""
        stats = self.stats
        events = self._events
        streamed = stats.streamed  # None unless prices are configured
        self._task = asyncio.current_task()
        try:
            out, self._pending = self._pending, b""
            while True:
                if out:
                    if streamed is not None and stats.bytes <= STREAMED_LIMIT:
                        streamed.append(out)  # this piece is counted in `stats.bytes` already
                    yield out
                if self._done:
                    stats.streamed = None  # a complete stream: nothing to estimate
                    await self._release_upstream()
                    return
                chunk = await self._next_chunk()
                out = (
                    self._finish(self._parser.flush())
                    if chunk is None
                    else self._translate(self._parser.feed(chunk))
                )
        except GatewayError as exc:
            stats.status, stats.error, stats.failure = "error", exc.message, exc
            logger.warning("stream %s failed mid-stream: %s", stats.stream_id, exc.message)
            yield self._count(events.error(exc))
        except asyncio.CancelledError:
            cut = cut_cause(self._cut)
            if cut is None:
                raise
            stats.status, stats.error = "error", cut.message
            logger.warning("stream %s cut: %s", stats.stream_id, cut.message)
            yield self._count(events.error(cut))
        except Exception as exc:  # a bug of ours must still end the stream in the client's format
            stats.status, stats.error = "error", f"internal error: {exc!r}"
            logger.exception("stream %s: internal error while relaying", stats.stream_id)
            yield self._count(events.error(GatewayError("internal error while relaying the stream")))

    def _translate(self, parsed: list[tuple[str, bytes]]) -> bytes:
        events = self._events
        outs: list[bytes] = []
        count = 0
        for name, data in parsed:
            out = events.feed(name, data)
            if out:
                outs.append(out)
                count += 1
            if events.ended:
                outs.append(self._close_frames())
                break
        if count:
            self.stats.count_chunks(count)
        return self._count(b"".join(outs))

    def _finish(self, parsed: list[tuple[str, bytes]]) -> bytes:
        """The end of the upstream body: what is left in the parser, then the closing frames."""
        out = self._translate(parsed) if parsed else b""
        if self._done:
            return out
        return out + self._count(self._close_frames())

    def _close_frames(self) -> bytes:
        self._done = True
        out = self._events.end()
        self._note_usage()
        return out

    def _note_usage(self) -> None:
        """Usage is read at the end only (closing frames, or close): building it per read costs. Before
        the closing frames it is partial (Anthropic's output count arrives last)."""
        usage = self._events.usage
        if usage is not None:
            self.stats.usage = usage
            self.stats.usage_partial = not self._done or self.stats.status != "ok"

    def _count(self, out: bytes) -> bytes:
        self.stats.bytes += len(out)
        return out

    async def aclose(self) -> None:
        """Close the upstream if still open, log the summary, run the finish callbacks. Idempotent."""
        if self._closed:
            return
        self._closed = True
        stats = self.stats
        stats.finished = time.perf_counter()
        self._note_usage()  # what was seen, also of a stream that failed or was left: it was spent
        try:
            await self._close_upstream()
        finally:
            if logger.isEnabledFor(logging.INFO):
                logger.info(stats.summary())
            await run_finish_callbacks(self.on_finish, stats)
