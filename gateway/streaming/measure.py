"""Timing a response body as a client receives it: time to first byte, chunks, bytes and the intervals
between chunks. A chunk is an SSE event for an event stream, a body read otherwise.

Pure bookkeeping (the caller reads the bytes and the clock), used by `GET /streaming-compare` and the
stream benchmark, so both count chunks the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import orjson

from gateway.streaming.sse import SSEParser


@dataclass(slots=True)
class ReceivedBody:
    """Feed it `(piece, now)` per read, then `finish(now)`; `report()` gives the figures in milliseconds."""

    started: float  # when the request was sent (same clock as every `now`)
    sse: bool
    status: int = 0
    first_byte: float | None = None
    finished: float | None = None
    byte_count: int = 0
    reads: int = 0
    chunk_times: list[float] = field(default_factory=list)
    error: str | None = None
    _parser: SSEParser = field(default_factory=SSEParser)
    _head: bytearray = field(default_factory=bytearray)  # the start of a non-SSE body, for its error message

    def feed(self, piece: bytes, now: float) -> None:
        if not piece:
            return
        if self.first_byte is None:
            self.first_byte = now
        self.byte_count += len(piece)
        self.reads += 1
        if not self.sse:
            self.chunk_times.append(now)
            if len(self._head) < 4096:
                self._head += piece[:4096]
            return
        for payload in self._parser.feed(piece):
            self.chunk_times.append(now)
            if payload.startswith(b'{"error"'):
                self.error = _error_message(payload)

    def finish(self, now: float) -> None:
        self.finished = now
        if not self.sse and self.status >= 400 and self.error is None:
            self.error = _error_message(bytes(self._head))

    def report(self) -> dict[str, Any]:
        def ms(seconds: float | None) -> float | None:
            return None if seconds is None else round(seconds * 1000, 3)

        times = self.chunk_times
        intervals = [later - earlier for earlier, later in pairwise(times)]
        return {
            "status": self.status,
            "chunks": len(times),
            "bytes": self.byte_count,
            "reads": self.reads,
            "total_ms": ms(None if self.finished is None else self.finished - self.started),
            "ttfb_ms": ms(None if self.first_byte is None else self.first_byte - self.started),
            "avg_interval_ms": ms(sum(intervals) / len(intervals) if intervals else None),
            "max_interval_ms": ms(max(intervals) if intervals else None),
            "error": self.error,
        }


def _error_message(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace") or None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message"))
    return None if error is None else str(error)
