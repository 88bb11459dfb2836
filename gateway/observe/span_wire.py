"""What crosses the pipe from a gateway process to its span exporter (`observe/span_export.py`).

A frame is a 4-byte big-endian length and a `marshal` payload: first the exporter's settings (a dict), then
batches of finished spans, each a plain tuple in the order of `FinishedSpan`'s fields. Plain tuples because
the request path builds them (`observe/tracing_spans.py`) and `marshal` writes them in C, at about a
microsecond a span; the SDK's span objects and the OTLP encoder cost two orders of magnitude more and now
run in the exporter's process. A span's attributes travel as a tuple of values whose names are its kind's
(`ATTRIBUTE_NAMES`), not as a dict: no dict to build on the request path, no names to marshal. What the
exporter can work out it does (`derived_attributes`): the span's name, the token counts from the usage
object, the server's address from the provider's URL. `marshal` is safe here only because both ends are
the same program: the pipe is the parent's, never a network peer's.
"""

from __future__ import annotations

import functools
import marshal
import struct
from collections.abc import Mapping
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import urlsplit

LENGTH = struct.Struct("!I")
# A batch is at most OTEL_BSP_MAX_EXPORT_BATCH_SIZE spans; this bounds what a reader allocates.
MAX_FRAME = 256 * 1024 * 1024

# SpanKind and StatusCode values of the OpenTelemetry API (opentelemetry.trace), as the wire carries them.
KIND_SERVER = 1
KIND_CLIENT = 2
STATUS_UNSET = 0
STATUS_ERROR = 2

# The attributes of each kind of span, in the order of its `values` (GenAI semantic conventions; the
# gateway's own under gateway.*). None in `values`: not set. Two are sources, not attributes: USAGE (the
# usage object, in chat's shape: gen_ai.usage.input_tokens and output_tokens) and URL (the provider's base
# URL: server.address and server.port).
USAGE = "usage"
URL = "url"
USAGE_COUNTS = (
    ("gen_ai.usage.input_tokens", "prompt_tokens"),
    ("gen_ai.usage.output_tokens", "completion_tokens"),
)
REQUEST_ATTRIBUTES = (
    "http.request.method",
    "url.path",
    "gateway.request_id",
    "gen_ai.operation.name",
    "http.response.status_code",
    "gateway.attempts",
    "gateway.retries",
    "gateway.failovers",
    "gateway.stream",
    "gen_ai.request.model",
    "gateway.route",
    "gateway.provider",
    "gateway.key",
    "gateway.config_version",
    "gateway.stream.status",
    "gen_ai.provider.name",
    "gen_ai.response.model",
    "gen_ai.response.time_to_first_chunk",
    USAGE,
    "error.type",
    "gen_ai.request.max_tokens",
    "gen_ai.request.temperature",
    "gen_ai.request.top_p",
)
ATTEMPT_ATTRIBUTES = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gateway.provider",
    "gateway.attempt",
    URL,
    "gateway.attempt.outcome",
    "error.type",
    "http.response.status_code",
    "gen_ai.response.model",
    "gen_ai.response.id",
    "gen_ai.response.time_to_first_chunk",
    USAGE,
)
ATTRIBUTE_NAMES = {KIND_SERVER: REQUEST_ATTRIBUTES, KIND_CLIENT: ATTEMPT_ATTRIBUTES}


class FinishedSpan(NamedTuple):
    """The field order of a span on the wire (the request path builds the plain tuple)."""

    name: str | None  # None: the kind's (`span_name`)
    kind: int
    trace_id: int
    span_id: int
    parent_span_id: int  # 0: a root span
    parent_is_remote: bool  # the parent came in the client's traceparent
    tracestate: str | None  # the client's, carried as sent
    start_ns: int  # time.time_ns(), as the SDK's spans
    end_ns: int
    values: tuple[Any, ...]  # of ATTRIBUTE_NAMES[kind], in order; None: not set (dropped by the exporter)
    extra_attributes: dict[str, Any] | None  # beyond the kind's (captured prompts and answers)
    status_code: int
    status_description: str | None


def span_name(kind: int, attributes: Mapping[str, Any]) -> str:
    """A SERVER span's name is its method and path; a CLIENT span's its operation and model (GenAI)."""
    if kind == KIND_SERVER:
        return f"{attributes.get('http.request.method')} {attributes.get('url.path')}"
    return f"{attributes.get('gen_ai.operation.name')} {attributes.get('gen_ai.request.model')}"


def derived_attributes(kind: int, values: tuple[Any, ...]) -> dict[str, Any]:
    """The attributes of a span's values: None dropped, USAGE and URL worked out (a count of values that
    is not its kind's is an unreadable span: zip's ValueError; an unknown kind: KeyError)."""
    attributes = {
        name: value for name, value in zip(ATTRIBUTE_NAMES[kind], values, strict=True) if value is not None
    }
    usage = attributes.pop(USAGE, None)
    if isinstance(usage, dict):
        for name, field in USAGE_COUNTS:
            count = usage.get(field)
            if type(count) is int:  # by exact type: a JSON true is no count
                attributes[name] = count
    url = attributes.pop(URL, None)
    if isinstance(url, str):
        address, port = server_of(url)
        if address is not None:
            attributes["server.address"], attributes["server.port"] = address, port
    return attributes


@functools.lru_cache(maxsize=256)
def server_of(url: str) -> tuple[str | None, int | None]:
    """`server.address` and `server.port` of a provider's base URL (a few per config: parsed once)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None, None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


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
