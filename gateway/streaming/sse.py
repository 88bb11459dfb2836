"""Incremental Server-Sent Events parsing and framing.

The parser accepts upstream bytes split anywhere (even one byte per read), `\\n` or `\\r\\n` line endings,
comments/keep-alives and multi-line `data:` fields, and hands back the `data` payload of every complete
event as soon as its terminating blank line has arrived. Nothing waits for more bytes than one event needs.
"""

from __future__ import annotations

DONE = b"[DONE]"
DONE_FRAME = b"data: [DONE]\n\n"


def frame(payload: bytes) -> bytes:
    """One SSE event carrying `payload` as its data, ready to write to the client."""
    if b"\n" in payload:
        return b"".join(b"data: " + line + b"\n" for line in payload.split(b"\n")) + b"\n"
    return b"data: " + payload + b"\n\n"


class SSEParser:
    """Feed raw bytes, get complete event payloads back (`data` lines joined by `\\n`)."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # A "\r" at the very end may be the first half of "\r\n": keep it for the next read.
            held = buffer.endswith(b"\r")
            if held:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buffer += b"\r"
        events: list[bytes] = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            payload = _event_data(buffer[start:end])
            if payload is not None:
                events.append(payload)
            start = end + 2
        self._buffer = buffer[start:] if start < len(buffer) else b""
        return events

    @property
    def pending(self) -> bytes:
        """Bytes of an event that has not been terminated yet."""
        return self._buffer

    def flush(self) -> list[bytes]:
        """At end of stream: an unterminated final event still counts if it carries data."""
        rest, self._buffer = self._buffer.rstrip(b"\r\n"), b""
        if not rest:
            return []
        payload = _event_data(rest)
        return [] if payload is None else [payload]


def _event_data(block: bytes) -> bytes | None:
    # Fast path: the usual `data: {...}` single-line event.
    if block.startswith(b"data: ") and b"\n" not in block:
        return block[6:]
    data_lines: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue  # blank or comment / keep-alive
        name, sep, value = line.partition(b":")
        if name != b"data":
            continue  # event:, id:, retry: carry nothing the OpenAI stream format uses
        if sep and value.startswith(b" "):
            value = value[1:]
        data_lines.append(value)
    if not data_lines:
        return None
    return b"\n".join(data_lines)
