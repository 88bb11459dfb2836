"""What crosses the pipe from a gateway process to its span exporter (`observe/span_export.py`).

A frame is a 4-byte big-endian length and a JSON payload (`orjson`): first the exporter's settings, then
batches of traced requests. A traced request is one plain tuple (`TracedRequest`'s fields) that carries its
own SERVER span and, as lists (`FinishedAttempt`'s fields), the CLIENT spans of its upstream attempts: one
item per request, so the request path builds one tuple and queues it once, and what the spans share (trace
id, tracestate, the parent of every attempt) is written once. Attributes travel as values in the order of
their kind's names (`REQUEST_ATTRIBUTES`, `ATTEMPT_ATTRIBUTES`), not as dicts. What the exporter can work
out it does (`request_attributes`, `attempt_attributes`): span names, kinds and statuses, the operation from
the path, the provider's type and the response model from the attempts, the token counts from the usage
object, the server's address from the provider's URL. JSON, not `marshal`: orjson writes a traced request
in 60% of marshal's instructions (6.3k against 10.8k, counted on 512 real ones; marshal pays its reference
table per object and a digit loop per nanosecond timestamp), and what it reads is data, whoever wrote it.
Tuples arrive as lists; a value JSON cannot carry (an int beyond 64 bits) makes its request unwritable.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping
from typing import Any, BinaryIO, NamedTuple
from urllib.parse import urlsplit

import orjson

LENGTH = struct.Struct("!I")
# A batch is at most OTEL_BSP_MAX_EXPORT_BATCH_SIZE requests; this bounds what a reader allocates.
MAX_FRAME = 256 * 1024 * 1024

# Inbound path -> gen_ai.operation.name (count_tokens is no GenAI operation: its span has none).
OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/chat/completions/asgi": "chat",
    "/v1/messages": "chat",
    "/v1/responses": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/completions": "text_completion",
}
# An attempt's outcomes whose span status is ERROR (its error.type the description).
FAILED_OUTCOMES = frozenset({"error", "cancelled"})

# The values of each kind of span, in order (GenAI semantic conventions; the gateway's own under gateway.*).
# None: not set. Two are sources, not attributes: USAGE (the usage object, in chat's shape:
# gen_ai.usage.input_tokens and output_tokens) and URL (the provider's base URL: server.address, .port).
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
    "gen_ai.response.time_to_first_chunk",
    USAGE,
    "error.type",
    "gen_ai.request.max_tokens",
    "gen_ai.request.temperature",
    "gen_ai.request.top_p",
)
# Set when the attempt starts, then (appended when it ends) what it came to.
ATTEMPT_STARTED = ("gen_ai.provider.name", "gen_ai.request.model", "gateway.provider", "gateway.attempt", URL)
ATTEMPT_ENDED = (
    "gateway.attempt.outcome",
    "error.type",
    "http.response.status_code",
    "gen_ai.response.model",
    "gen_ai.response.id",
    "gen_ai.response.time_to_first_chunk",
    USAGE,
)
ATTEMPT_ATTRIBUTES = ATTEMPT_STARTED + ATTEMPT_ENDED
RESPONSE_MODEL_AT = ATTEMPT_ENDED.index("gen_ai.response.model")  # in an attempt's ended values


class TracedRequest(NamedTuple):
    """The field order of a traced request on the wire (the request path builds the plain tuple)."""

    # Ids in lower-case hex as traceparent carries them, but for `span_id`, which goes in no header.
    trace_id: str
    span_id: int
    parent_span_id: str  # "": a root span; else the client's span, from its traceparent
    tracestate: str | None  # the client's, carried as sent
    start_ns: int  # time.time_ns(), as the SDK's spans
    end_ns: int
    values: tuple[Any, ...]  # of REQUEST_ATTRIBUTES, in order; None: not set (dropped by the exporter)
    extra_attributes: dict[str, Any] | None  # beyond REQUEST_ATTRIBUTES (captured prompts and answers)
    attempts: list[list[Any]]  # each FinishedAttempt's fields, in the order they were made


class FinishedAttempt(NamedTuple):
    """The field order of an attempt's list: its span id and start, the values of ATTEMPT_STARTED, then
    its end and the values of ATTEMPT_ENDED (an attempt the request ended without ending has none)."""

    span_id: str  # hex
    start_ns: int
    started: tuple[Any, ...]
    end_ns: int | None
    ended: tuple[Any, ...]


# Where an attempt's list is cut (`attempt_fields`): span id, start, ATTEMPT_STARTED, end, ATTEMPT_ENDED.
STARTED_AT = 2
ENDED_AT = STARTED_AT + len(ATTEMPT_STARTED)


def spans_of(request: tuple[Any, ...]) -> int:
    """The spans a traced request's tuple stands for: its own and one per attempt."""
    attempts = request[-1]
    return 1 + len(attempts) if isinstance(attempts, list) else 1


def attempt_fields(attempt: list[Any]) -> FinishedAttempt:
    """An attempt's list read by its fields (a list of a length no attempt has: ValueError)."""
    ended = attempt[ENDED_AT + 1 :]
    if len(attempt) < ENDED_AT or (len(attempt) > ENDED_AT and len(ended) != len(ATTEMPT_ENDED)):
        raise ValueError(f"an attempt of {len(attempt)} fields")
    end_ns = attempt[ENDED_AT] if len(attempt) > ENDED_AT else None
    return FinishedAttempt(attempt[0], attempt[1], tuple(attempt[STARTED_AT:ENDED_AT]), end_ns, tuple(ended))


def named(names: tuple[str, ...], values: tuple[Any, ...]) -> dict[str, Any]:
    """The attributes of `values`: None dropped, USAGE and URL worked out (a count of values that is not
    the names': zip's ValueError)."""
    attributes = {name: value for name, value in zip(names, values, strict=True) if value is not None}
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


def request_attributes(request: TracedRequest, attempts: list[FinishedAttempt]) -> dict[str, Any]:
    """The SERVER span's attributes: its values, the operation of its path, and from its attempts the
    provider's type (of the last) and the response model (of the last that named one)."""
    attributes = named(REQUEST_ATTRIBUTES, request.values)
    operation = OPERATIONS.get(attributes.get("url.path", ""))
    if operation is not None:
        attributes["gen_ai.operation.name"] = operation
    if attempts:
        attributes["gen_ai.provider.name"] = attempts[-1].started[0]
    for attempt in reversed(attempts):
        model = attempt.ended[RESPONSE_MODEL_AT] if attempt.ended else None
        if model is not None:
            attributes["gen_ai.response.model"] = model
            break
    if request.extra_attributes:
        attributes.update(request.extra_attributes)
    return attributes


def attempt_attributes(operation: str, attempt: FinishedAttempt) -> dict[str, Any]:
    """A CLIENT span's attributes: the request's operation (chat where it has none) and its values."""
    values = attempt.started + (attempt.ended or (None,) * len(ATTEMPT_ENDED))
    return {"gen_ai.operation.name": operation, **named(ATTEMPT_ATTRIBUTES, values)}


def request_failed(attributes: Mapping[str, Any]) -> bool:
    """A SERVER span is an error when the gateway answered 5xx, the stream broke, or the request was
    cancelled before an answer (shutdown)."""
    status = attributes.get("http.response.status_code")
    if status is None:  # no answer was sent: cancelled
        return attributes.get("error.type") == "cancelled"
    return (type(status) is int and status >= 500) or attributes.get("gateway.stream.status") == "error"


def request_span_name(attributes: Mapping[str, Any]) -> str:
    """A SERVER span's name: its method and path."""
    return f"{attributes.get('http.request.method')} {attributes.get('url.path')}"


def attempt_span_name(attributes: Mapping[str, Any]) -> str:
    """A CLIENT span's name: its operation and model (GenAI)."""
    return f"{attributes.get('gen_ai.operation.name')} {attributes.get('gen_ai.request.model')}"


@functools.lru_cache(maxsize=256)
def server_of(url: str) -> tuple[str | None, int | None]:
    """`server.address` and `server.port` of a provider's base URL (a few per config: parsed once)."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None, None
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def frame(message: Any) -> bytes:
    payload = orjson.dumps(message)  # its JSONEncodeError is a TypeError
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
    return orjson.loads(payload)
