"""What crosses the pipe from a gateway process to its span exporter (`observe/span_export.py`).

A frame is a 4-byte big-endian length and a `marshal` payload: first the exporter's settings (a dict), then
batches of finished spans, each a plain tuple in the order of `FinishedSpan`'s fields. Plain tuples because
the request path builds them (`observe/tracing_spans.py`) and `marshal` writes them in C, at about a
microsecond a span; the SDK's span objects and the OTLP encoder cost two orders of magnitude more and now
run in the exporter's process. `marshal` is safe here only because both ends are the same program: the pipe
is the parent's, never a network peer's.
"""

from __future__ import annotations

import marshal
import struct
from typing import Any, BinaryIO, NamedTuple

LENGTH = struct.Struct("!I")
# A batch is at most OTEL_BSP_MAX_EXPORT_BATCH_SIZE spans; this bounds what a reader allocates.
MAX_FRAME = 256 * 1024 * 1024

# SpanKind and StatusCode values of the OpenTelemetry API (opentelemetry.trace), as the wire carries them.
KIND_SERVER = 1
KIND_CLIENT = 2
STATUS_UNSET = 0
STATUS_ERROR = 2


class FinishedSpan(NamedTuple):
    """The field order of a span on the wire (the request path builds the plain tuple)."""

    name: str
    kind: int
    trace_id: int
    span_id: int
    parent_span_id: int  # 0: a root span
    parent_is_remote: bool  # the parent came in the client's traceparent
    tracestate: str | None  # the client's, carried as sent
    start_ns: int  # time.time_ns(), as the SDK's spans
    end_ns: int
    attributes: dict[str, Any]  # a None value is not set (dropped by the exporter)
    status_code: int
    status_description: str | None


def frame(message: Any) -> bytes:
    payload = marshal.dumps(message)
    return LENGTH.pack(len(payload)) + payload


def read_frame(stream: BinaryIO) -> Any:
    """The next message, or None at the end of the stream (the gateway closed it or exited)."""
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    (length,) = LENGTH.unpack(head)
    if length > MAX_FRAME:
        raise ValueError(f"a frame of {length} bytes is over the limit of {MAX_FRAME}")
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return marshal.loads(payload)
