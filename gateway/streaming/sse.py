"""Incremental Server-Sent Events parsing and framing.

The parser accepts upstream bytes split anywhere (even one byte per read), `\\n`, `\\r\\n` or `\\r` line
endings, comments/keep-alives and multi-line `data:` fields, and hands back the `data` payload of every
complete event as soon as its terminating blank line has arrived. Nothing waits for more bytes than one
event needs, and bytes already scanned are never scanned again (a 1-byte-per-read upstream stays linear).
"""

from __future__ import annotations

from typing import Generic, TypeVar

DONE = b"[DONE]"
DONE_FRAME = b"data: [DONE]\n\n"
_BOM = b"\xef\xbb\xbf"


# Byte searches here use `find`, not `in`: on CPython 3.11 `needle in data` first tries the needle as an
# integer, raising and clearing a TypeError each time (about 2,000 instructions, several per stream).


def frame(payload: bytes) -> bytes:
    """One SSE event carrying `payload` as its data, ready to write to the client."""
    if payload.find(b"\n") >= 0:
        return b"".join(b"data: " + line + b"\n" for line in payload.split(b"\n")) + b"\n"
    return b"data: " + payload + b"\n\n"


Event = TypeVar("Event")


class _BlockParser(Generic[Event]):
    """The incremental part shared by both parsers: raw bytes in, each complete event's block decoded by
    `_decode` (None: not an event to report)."""

    __slots__ = ("_buffer", "_scan", "_started")

    @staticmethod
    def _decode(block: bytes) -> Event | None:
        raise NotImplementedError

    def __init__(self) -> None:
        # Unterminated bytes, line endings normalised to "\n" (a last "\r" held back). A bytearray, so
        # that an event arriving in many small reads is appended to, not copied once per read.
        self._buffer = bytearray()
        self._scan = 0  # where to resume looking for "\n\n" in `_buffer`
        self._started = False  # a byte-order mark is only allowed before the first byte

    def feed(self, chunk: bytes) -> list[Event]:
        if not self._started:
            # Until the third byte, the buffer holds what may be the start of a byte-order mark.
            head = bytes(self._buffer) + chunk
            if len(head) < 3 and _BOM.startswith(head):
                self._buffer[:] = head
                return []
            self._started = True
            self._buffer.clear()
            chunk = head[3:] if head.startswith(_BOM) else head
        buffer = self._buffer
        if chunk.find(b"\r") >= 0 or buffer.endswith(b"\r"):
            chunk = self._normalise(chunk)
        if buffer:
            buffer += chunk
            end = buffer.find(b"\n\n", self._scan)
            if end < 0:
                # The separator may straddle this read and the next one: resume one byte back.
                self._scan = len(buffer) - 1
                return []
            data = bytes(buffer)
            buffer.clear()
        else:
            # The usual case: nothing held over, the read holds whole events. No copy at all.
            data = chunk
            end = data.find(b"\n\n")
        events: list[Event] = []
        decode = self._decode
        start = 0
        while end >= 0:
            payload = decode(data[start:end])
            if payload is not None:
                events.append(payload)
            start = end + 2
            end = data.find(b"\n\n", start)
        if start < len(data):
            buffer += data[start:]
        self._scan = max(len(buffer) - 1, 0)
        return events

    def _normalise(self, chunk: bytes) -> bytes:
        """`\\r\\n` and a lone `\\r` become `\\n`; a last `\\r` is held back (it may start a `\\r\\n`)."""
        if self._buffer.endswith(b"\r"):
            del self._buffer[-1]
            self._scan = min(self._scan, max(len(self._buffer) - 1, 0))
            chunk = b"\r" + chunk
        held = chunk.endswith(b"\r")
        if held:
            chunk = chunk[:-1]
        chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return chunk + b"\r" if held else chunk

    def at_boundary(self, chunk: bytes) -> bool:
        """Whether `chunk` starts a new event: nothing is held over and there is no byte-order mark to
        strip. The caller may then take the chunk's whole events as they are, without `feed`."""
        if self._buffer:
            return False
        if not self._started:
            if chunk[:1] == _BOM[:1]:
                return False
            self._started = True
        return True

    @property
    def pending(self) -> bytes:
        """Bytes of an event that has not been terminated yet."""
        return bytes(self._buffer).rstrip(b"\r")

    def flush(self) -> list[Event]:
        """At end of stream: an unterminated final event still counts if it carries data.

        The SSE specification drops such an event, but some OpenAI-compatible servers end with
        `data: [DONE]\\n` and a single newline; the relay checks that what is flushed is a whole payload.
        """
        rest = bytes(self._buffer).rstrip(b"\r\n")
        self._buffer.clear()
        self._scan = 0
        if not rest:
            return []
        payload = self._decode(rest.replace(b"\r", b"\n"))
        return [] if payload is None else [payload]


def named_frame(event: str, payload: bytes) -> bytes:
    """One named SSE event, as Anthropic writes them: `event: NAME`, then the data line(s)."""
    return b"event: " + event.encode() + b"\n" + frame(payload)


def _event_data(block: bytes) -> bytes | None:
    # Fast path: the usual `data: {...}` single-line event.
    if block.startswith(b"data: ") and block.find(b"\n") < 0:
        return block[6:] or None
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
    payload = b"\n".join(data_lines)
    return payload or None


def _named_event(block: bytes) -> tuple[str, bytes] | None:
    # Fast path: `event: NAME` then one `data: ...` line, as Anthropic writes every event.
    if block.startswith(b"event: "):
        end = block.find(b"\n")
        if end > 0 and block.startswith(b"data: ", end + 1) and block.find(b"\n", end + 1) < 0:
            data = block[end + 7 :]
            if data:
                return block[7:end].decode("utf-8", "replace"), data
    name = b""
    data_lines: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data_lines.append(value)
        elif field == b"event":
            name = value
    if not data_lines:
        return None
    payload = b"\n".join(data_lines)
    return (name.decode("utf-8", "replace"), payload) if payload else None


class SSEParser(_BlockParser[bytes]):
    """Feed raw bytes, get complete event payloads back (`data` lines joined by `\\n`).

    Events without data (comments, keep-alives, `data:` with nothing after it) are not reported, as the
    SSE specification says; `event:`, `id:` and `retry:` fields are ignored (OpenAI streams do not use them).
    """

    __slots__ = ()

    _decode = staticmethod(_event_data)


class EventParser(_BlockParser[tuple[str, bytes]]):
    """Like `SSEParser`, but each event comes with its `event:` name ("" when it has none): Anthropic's
    streams name every event, and its SDKs dispatch on the name."""

    __slots__ = ()

    _decode = staticmethod(_named_event)
