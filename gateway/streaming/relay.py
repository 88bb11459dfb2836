"""The event relay: upstream bytes in, client SSE frames out, one frame per complete event.

Both streamers (ASGI and Starlette) iterate the same `StreamRelay.frames()`. The relay owns the upstream
response and closes it on every exit path. It does no JSON work per chunk except on the rare chunk that
carries `usage`, and writes a per-chunk DEBUG line only when that level is on (checked once per stream).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.streaming.sse import DONE, DONE_FRAME, SSEParser, frame

logger = logging.getLogger("gateway.stream")


class ByteStream(Protocol):
    """What providers hand the relay: upstream bytes (errors already mapped to ours) and a close."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class StreamStats:
    """Timing and size of one relayed stream; filled as it runs, read by logs, metrics and usage."""

    stream_id: str
    provider: str
    model: str
    started: float = field(default_factory=time.perf_counter)  # the client request arrived
    connected: float = 0.0  # upstream response head received
    first_chunk: float = 0.0
    last_chunk: float = 0.0
    finished: float = 0.0
    chunks: int = 0
    bytes: int = 0
    max_interval: float = 0.0
    status: str = "ok"  # ok | error | disconnected
    error: str | None = None
    usage: dict[str, Any] | None = None

    def summary(self) -> str:
        def ms(value: float) -> str:
            return f"{value * 1000:.1f}ms"

        connect = ms(self.connected - self.started) if self.connected else "-"
        first = ms(self.first_chunk - self.started) if self.first_chunk else "-"
        total = ms((self.finished or time.perf_counter()) - self.started)
        average = ms((self.last_chunk - self.first_chunk) / (self.chunks - 1)) if self.chunks > 1 else "-"
        return (
            f"stream {self.stream_id} provider={self.provider} model={self.model} status={self.status} "
            f"connect={connect} first_chunk={first} chunks={self.chunks} bytes={self.bytes} "
            f"total={total} avg_interval={average} max_interval={ms(self.max_interval)}"
        )


StreamCallback = Callable[[StreamStats], Awaitable[None] | None]


class StreamRelay:
    def __init__(
        self,
        upstream: ByteStream,
        stats: StreamStats,
        *,
        drop_usage_chunk: bool,
        on_finish: list[StreamCallback] | None = None,
    ) -> None:
        self._upstream = upstream
        self._chunks = upstream.__aiter__()
        self._parser = SSEParser()
        self._pending: list[bytes] = []
        self._done = False
        self._closed = False
        self._drop_usage_chunk = drop_usage_chunk
        self.stats = stats
        self.on_finish: list[StreamCallback] = on_finish if on_finish is not None else []

    async def prime(self) -> None:
        """Read until the first complete event is in, so an upstream that fails before its first event can
        still be retried or failed over: the client has not received a byte yet. Raises `UpstreamError`."""
        self.stats.connected = time.perf_counter()
        while not self._pending and not self._done:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._pending.extend(self._parser.flush())
                if not self._pending:
                    raise UpstreamProtocolError(
                        f"provider {self.stats.provider!r} closed the stream before any event"
                    ) from None
                break
            self._pending.extend(self._parser.feed(chunk))

    async def frames(self) -> AsyncIterator[bytes]:
        """Client frames, ending with `data: [DONE]` or with one OpenAI error event."""
        stats = self.stats
        debug = logger.isEnabledFor(logging.DEBUG)
        try:
            pending, self._pending = self._pending, []
            for payload in pending:
                out = self._process(payload)
                if out is not None:
                    yield out
                if self._done:
                    return
            while not self._done:
                try:
                    chunk = await self._chunks.__anext__()
                except StopAsyncIteration:
                    for payload in self._parser.flush():
                        out = self._process(payload)
                        if out is not None:
                            yield out
                    if not self._done:  # upstream ended without [DONE]; the client still gets one
                        self._done = True
                        yield DONE_FRAME
                    return
                for payload in self._parser.feed(chunk):
                    out = self._process(payload)
                    if out is not None:
                        if debug:
                            self._log_chunk(len(out))
                        yield out
        except GatewayError as exc:
            stats.status, stats.error = "error", exc.message
            logger.warning("stream %s failed mid-stream: %s", stats.stream_id, exc.message)
            yield frame(exc.body())
        finally:
            await self.aclose()

    def _process(self, payload: bytes) -> bytes | None:
        """The frame for one upstream event, or None when the event is not for the client."""
        if payload == DONE:
            self._done = True
            return DONE_FRAME
        if not payload.startswith(b"{"):
            raise UpstreamProtocolError(
                f"provider {self.stats.provider!r} sent a malformed stream event: {payload[:80]!r}"
            )
        stats = self.stats
        if b'"usage"' in payload and b'"usage":null' not in payload:
            drop = self._capture_usage(payload)
            if drop:
                return None
        now = time.perf_counter()
        if stats.chunks:
            interval = now - stats.last_chunk
            if interval > stats.max_interval:
                stats.max_interval = interval
        else:
            stats.first_chunk = now
        stats.last_chunk = now
        stats.chunks += 1
        out = frame(payload)
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
        usage = data.get("usage") if isinstance(data, dict) else None
        if isinstance(usage, dict):
            self.stats.usage = usage
        return self._drop_usage_chunk and isinstance(data, dict) and not data.get("choices")

    def _log_chunk(self, size: int) -> None:
        stats = self.stats
        logger.debug(
            "stream %s chunk=%d size=%d since_start=%.2fms",
            stats.stream_id,
            stats.chunks,
            size,
            (stats.last_chunk - stats.started) * 1000,
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        stats = self.stats
        stats.finished = time.perf_counter()
        try:
            await self._upstream.aclose()
        finally:
            if logger.isEnabledFor(logging.INFO):
                logger.info(stats.summary())
            for callback in self.on_finish:
                result = callback(stats)
                if result is not None:
                    await result

    def mark_disconnected(self) -> None:
        if self.stats.status == "ok":
            self.stats.status = "disconnected"
