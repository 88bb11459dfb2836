"""Timing and size of one relayed stream: filled by the relay as it runs, read by logs, metrics and usage."""

from __future__ import annotations

import builtins
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError

# Bytes of client frames a priced stream keeps for its estimate; past them the rest is scaled from them.
STREAMED_LIMIT = 1024 * 1024


@dataclass(slots=True)
class StreamStats:
    """All times are `time.perf_counter()` values; 0.0 means "has not happened"."""

    stream_id: str
    provider: str
    model: str
    started: float = field(default_factory=time.perf_counter)  # the client request arrived
    connected: float = 0.0  # upstream response head received
    first_chunk: float = 0.0
    last_chunk: float = 0.0
    finished: float = 0.0
    chunks: int = 0  # event frames for the client; `[DONE]` and a final error event are not counted
    bytes: int = 0  # bytes for the client, all frames included
    upstream_bytes: int = 0  # bytes read from upstream
    max_interval: float = 0.0
    status: str = "ok"  # ok | error | disconnected
    error: str | None = None
    failure: GatewayError | None = field(default=None, repr=False)  # what ended the stream mid-way
    usage: dict[str, Any] | None = None
    response_model: str | None = None  # the `model` of the usage event, when the upstream's stream has one
    usage_partial: bool = False  # `usage` is what arrived before the stream was cut (its output not yet)
    # The pieces handed to the client, kept (references, no copy) while prices are configured, up to
    # STREAMED_LIMIT bytes: a stream cut before its usage is charged from them. None: not kept.
    streamed: list[builtins.bytes] | None = field(default=None, repr=False)  # `bytes` is a field here

    def count_chunks(self, count: int) -> None:
        """`count` event frames handed to the client now (together: the gap between them is zero)."""
        now = time.perf_counter()
        if self.chunks:
            interval = now - self.last_chunk
            if interval > self.max_interval:
                self.max_interval = interval
        else:
            self.first_chunk = now
        self.last_chunk = now
        self.chunks += count

    @property
    def average_interval(self) -> float | None:
        if self.chunks < 2:
            return None
        return (self.last_chunk - self.first_chunk) / (self.chunks - 1)

    def summary(self) -> str:
        """The one INFO line per stream."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.1f}ms"

        connect = ms(self.connected - self.started) if self.connected else "-"
        first = ms(self.first_chunk - self.started) if self.first_chunk else "-"
        total = ms((self.finished or time.perf_counter()) - self.started)
        line = (
            f"stream {self.stream_id} provider={self.provider} model={self.model} status={self.status} "
            f"connect={connect} first_chunk={first} chunks={self.chunks} bytes={self.bytes} "
            f"upstream_bytes={self.upstream_bytes} total={total} avg_interval={ms(self.average_interval)} "
            f"max_interval={ms(self.max_interval)}"
        )
        return line if self.error is None else f"{line} error={self.error!r}"
