"""The event relay: upstream bytes in, client SSE frames out: each read's complete events, at once.

Both streamers (ASGI and Starlette) iterate the same `StreamRelay.frames()` and own the relay: they call
`StreamRelay.aclose()` on every exit path, the one place the upstream response is closed, the summary is
logged and the finish callbacks (usage, metrics) run. The relay does no JSON work per chunk except on the
rare chunk that carries `usage`. What events mean is the attempt's translator's business
(`EventTranslator`): it passes them through, or turns each into the client's frames.

There is one framing path whatever the log level: DEBUG adds a line per piece handed to the streamer
(checked once per stream), it never changes how events are framed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator

import orjson

from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.streaming.callbacks import StreamCallback, run_finish_callbacks
from gateway.streaming.event_scan import carries_usage, last_event, usage_at
from gateway.streaming.relay_protocol import ByteStream, EventTranslator, Relay, cut_cause
from gateway.streaming.sse import DONE, DONE_FRAME, SSEParser, frame
from gateway.streaming.stats import STREAMED_LIMIT, StreamStats
from gateway.streaming.stream_errors import first_event_error
from gateway.streaming.upstream_relay import UpstreamRelay

__all__ = [
    "ByteStream",
    "EventTranslator",
    "Relay",
    "StreamCallback",
    "StreamRelay",
    "StreamStats",
    "cut_cause",
]

logger = logging.getLogger("gateway.stream")


class StreamRelay(UpstreamRelay):
    def __init__(
        self,
        upstream: ByteStream,
        stats: StreamStats,
        *,
        events: EventTranslator,
        on_finish: list[StreamCallback] | None = None,
    ) -> None:
        super().__init__(upstream, stats, on_finish)  # `_done`: `[DONE]` went out (received or made up)
        self._parser = SSEParser()
        self._pending: list[bytes] = []
        self._pending_batch: bytes | None = None  # what `prime` read, when it went through as it was
        self._events = events
        self._passthrough = events.passthrough  # whole runs of plain events go out as they came
        self._debug = logger.isEnabledFor(logging.DEBUG)
        self._last_payload = b""  # the last event other than [DONE], or a passed-through block ending in it

    async def prime(self) -> None:
        """Read until the first complete event is in, so an upstream that fails before its first event can
        still be retried or failed over: the client has not received a byte yet. Raises `UpstreamError`."""
        stats = self.stats
        stats.connected = time.perf_counter()
        try:
            while not self._pending and self._pending_batch is None:
                chunk = await self._next_chunk()
                if chunk is None:
                    self._pending = self._flush()
                    if not self._pending:
                        raise UpstreamProtocolError(
                            f"provider {stats.provider!r} closed the stream before any event"
                        )
                    return
                if self._passthrough:
                    head, chunk = self._pass_through(chunk)
                    self._pending_batch = head or None
                self._pending = self._parser.feed(chunk) if chunk else []
            batch = self._pending_batch
            first = batch[6 : batch.find(b"\n\n")] if batch is not None else self._pending[0]
            error = first_event_error(first, stats.provider)
            if error is not None:  # an error object instead of a first chunk: an upstream error
                raise error
        except GatewayError as exc:
            stats.status, stats.error = "error", exc.message
            raise
        except asyncio.CancelledError:  # a first-byte timeout, or the client went away
            stats.status, stats.error = "error", "cancelled before the first event"
            raise

    async def frames(self) -> AsyncGenerator[bytes, None]:
        """Client bytes, ending with `data: [DONE]` or with one error event: each upstream read's complete
        events in one piece (one write, see `_pass_through`).

        An upstream failure after the first frame (dropped connection, read timeout, malformed event)
        becomes that final error event, after the events that preceded it: the HTTP status is long gone.
        The caller closes the relay.
        """
        stats = self.stats
        count, previous = 0, stats.started  # for the DEBUG lines only
        streamed = stats.streamed  # None unless prices are configured
        self._task = asyncio.current_task()
        try:
            payloads, self._pending = self._pending, []
            batch, self._pending_batch = self._pending_batch, None
            while True:
                out, failure = self._join(payloads) if payloads else (b"", None)
                if batch:
                    out = batch + out if out else batch
                if out:
                    handed = time.perf_counter()
                    if streamed is not None and stats.bytes <= STREAMED_LIMIT:
                        streamed.append(out)  # this piece is counted in `stats.bytes` already
                    yield out
                    if self._debug:
                        count += 1
                        self._log_piece(count, out.count(b"\n\n"), len(out), handed, previous)
                        previous = handed
                if failure is not None:
                    try:
                        raise failure
                    finally:
                        failure = None  # the traceback holds this frame: no cycle through it
                if self._done:
                    stats.streamed = None  # a complete stream: nothing to estimate
                    await self._release_upstream()
                    return
                if self._exhausted:
                    self._check_complete()
                    self._done = True  # a complete answer without [DONE]; the client still gets one
                    stats.bytes += len(DONE_FRAME)
                    yield DONE_FRAME
                    await self._release_upstream()
                    return
                chunk = await self._next_chunk()
                if chunk is None:
                    batch, payloads = None, self._flush()
                    continue
                if self._passthrough:
                    batch, chunk = self._pass_through(chunk)
                payloads = self._parser.feed(chunk) if chunk else []
        except GatewayError as exc:
            stats.status, stats.error, stats.failure = "error", exc.message, exc
            logger.warning("stream %s failed mid-stream: %s", stats.stream_id, exc.message)
            yield self._error_frame(exc)
        except asyncio.CancelledError:
            cut = cut_cause(self._cut)
            if cut is None:
                raise
            stats.status, stats.error = "error", cut.message
            logger.warning("stream %s cut: %s", stats.stream_id, cut.message)
            yield self._error_frame(cut)
        except Exception as exc:  # a bug of ours must still end the stream the OpenAI way
            stats.status, stats.error = "error", f"internal error: {exc!r}"
            logger.exception("stream %s: internal error while relaying", stats.stream_id)
            yield self._error_frame(GatewayError("internal error while relaying the stream"))

    def _join(self, payloads: list[bytes]) -> tuple[bytes, GatewayError | None]:
        """The frames of one read's events as one piece, up to `[DONE]`; a malformed event ends the piece
        there and is returned, so the events before it still go out ahead of the error event."""
        outs: list[bytes] = []
        failure: GatewayError | None = None
        try:
            for payload in payloads:
                out = self._process(payload)
                if out is not None:
                    outs.append(out)
                if self._done:
                    break
        except GatewayError as exc:
            failure = exc
        return (outs[0] if len(outs) == 1 else b"".join(outs)), failure

    def _flush(self) -> list[bytes]:
        """What is left in the parser at the end of the body; a cut-off event is a protocol error."""
        payloads = self._parser.flush()
        for payload in payloads:
            if payload != DONE:
                try:
                    orjson.loads(payload)
                except orjson.JSONDecodeError:
                    raise UpstreamProtocolError(
                        f"provider {self.stats.provider!r} ended the stream in the middle of an event"
                    ) from None
        return payloads

    def _check_complete(self) -> None:
        """At the end of a body without `[DONE]`: was the answer finished (a `finish_reason`, or the
        usage-only chunk that follows it)? A connection-delimited body that was cut off between two
        events looks like a normal end otherwise, and the client must not take it for a whole answer."""
        try:
            data = orjson.loads(last_event(self._last_payload))
            choices = data.get("choices")
            finished = choices == [] or any(choice.get("finish_reason") for choice in choices)
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            finished = False
        if not finished:
            raise UpstreamProtocolError(
                f"provider {self.stats.provider!r} ended the stream before the answer was complete"
            )

    def _pass_through(self, chunk: bytes) -> tuple[bytes, bytes]:
        """Split a read into what goes to the client as it came and what the parser must see.

        The head is the read's longest run of whole one-line `data: {...}` events (the last may be
        `data: [DONE]`) up to the first event with a usage block: exactly the frames `_process` would
        build for them, so it goes out as it is, with no work per event. The rest (the usage event and
        what follows, an unfinished event, or the whole read when it is anything else) is parsed.

        Under load one upstream read often holds several events; forwarding them together is the same
        as forwarding each the moment it arrived (they arrived together), at a fraction of the cost."""
        if not self._parser.at_boundary(chunk):
            return b"", chunk
        usage = usage_at(chunk)
        cut = chunk.rfind(b"\n\n", 0, len(chunk) if usage < 0 else usage) + 2
        if cut < 2:
            return b"", chunk
        head = chunk if cut == len(chunk) else chunk[:cut]
        # Whole one-line events: exactly two line feeds each (the separator), no other field or line.
        count = head.count(b"\n\n")
        if head.find(b"\r") >= 0 or head.count(b"\n") != 2 * count:  # `find`: see sse.py
            return b"", chunk  # other line endings, a multi-line event, other fields: the parser's job
        done = head.endswith(b"\n\ndata: [DONE]\n\n") or head == DONE_FRAME
        events = count - done
        # Each event `data: {...}`, [DONE] only last: the first starts so, every separator between two
        # events is `}\n\ndata: {`, and the last one ends with `}`. Counted in C, without a split.
        if events and not (
            head.startswith(b"data: {")
            and head.count(b"}\n\ndata: {") == events - 1
            and head.endswith(b"}\n\ndata: [DONE]\n\n" if done else b"}\n\n")
        ):
            return b"", chunk  # a comment, a malformed event, [DONE] before the end: the parser decides
        stats = self.stats
        if events:
            stats.count_chunks(events)
            self._last_payload = head  # a block of events: `_check_complete` takes its last one
        stats.bytes += len(head)
        self._done = done
        return head, (b"" if done or cut == len(chunk) else chunk[cut:])

    def _process(self, payload: bytes) -> bytes | None:
        """The frame for one upstream event, or None when the event is not for the client."""
        if payload == DONE:
            self._done = True
            self.stats.bytes += len(DONE_FRAME)
            return DONE_FRAME
        self._last_payload = payload
        # A cheap shape check instead of a JSON parse per chunk: truncation, the failure seen in
        # practice, leaves an event that does not end with "}".
        if payload[:1] != b"{" or (payload[-1:] != b"}" and not payload.rstrip().endswith(b"}")):
            raise UpstreamProtocolError(
                f"provider {self.stats.provider!r} sent a malformed stream event: {payload[:80]!r}"
            )
        stats = self.stats
        if carries_usage(payload) and self._capture_usage(payload):
            return None
        out = frame(payload) if self._passthrough else self._events.event(payload)
        if not out:
            return None
        stats.count_chunks(1)
        stats.bytes += len(out)
        return out

    def _capture_usage(self, payload: bytes) -> bool:
        """Record the usage block; True when this is the usage-only chunk the client did not ask for."""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(
                f"provider {self.stats.provider!r} sent a malformed stream event: {payload[:80]!r}"
            ) from None
        if not isinstance(data, dict):
            return False
        usage = data.get("usage")
        if isinstance(usage, dict):
            self.stats.usage = usage
            model = data.get("model")
            if isinstance(model, str):
                self.stats.response_model = model
        return not self._events.keep_usage_event(data)

    def _error_frame(self, exc: GatewayError) -> bytes:
        out = frame(exc.body())
        self.stats.bytes += len(out)
        return out

    def _log_piece(self, count: int, events: int, size: int, handed: float, previous: float) -> None:
        """One DEBUG line per piece (one upstream read's events), written when the streamer has sent it
        and asks for the next one: `interval` since the previous piece was handed over, `at` since the
        request arrived, and `send`, how long the streamer took to write it."""
        logger.debug(
            "stream %s piece=%d events=%d size=%d interval=%.3fms at=%.3fms send=%.3fms",
            self.stats.stream_id,
            count,
            events,
            size,
            (handed - previous) * 1000,
            (handed - self.stats.started) * 1000,
            (time.perf_counter() - handed) * 1000,
        )

    async def aclose(self) -> None:
        """Close the upstream response if it is still open, log the summary and run the finish callbacks.
        Idempotent; streamers call it on every exit path, after the last byte went to the client."""
        if self._closed:
            return
        self._closed = True
        stats = self.stats
        stats.finished = time.perf_counter()
        try:
            await self._close_upstream()
        finally:
            if logger.isEnabledFor(logging.INFO):
                logger.info(stats.summary())
            await self._run_callbacks()

    async def _run_callbacks(self) -> None:
        await run_finish_callbacks(self.on_finish, self.stats)
