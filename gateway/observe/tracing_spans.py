"""The spans of one request: a SERVER span from arrival to the last byte, a CLIENT span per upstream attempt.

Attributes follow the OpenTelemetry GenAI semantic conventions (`gen_ai.operation.name`,
`gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`, `gen_ai.usage.*`,
`gen_ai.response.time_to_first_chunk`); what is the gateway's own is under `gateway.*` (route, attempt
number and outcome, retries, failovers). Prompts and answers go on the request span only with
`capture_content` (`gen_ai.input.messages`, `gen_ai.output.messages`); error descriptions are the error's
type, never its message (an upstream's message may quote the prompt).
"""

from __future__ import annotations

import asyncio
import time
from random import getrandbits
from typing import Any, Protocol

import orjson

from gateway.errors import GatewayError, UpstreamError, UpstreamStatusError
from gateway.observe.span_wire import KIND_CLIENT, KIND_SERVER, STATUS_ERROR, STATUS_UNSET
from gateway.records import RequestRecord
from gateway.streaming.stats import StreamStats

# Inbound path -> gen_ai.operation.name (count_tokens is no GenAI operation: its span has none).
OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/chat/completions/asgi": "chat",
    "/v1/messages": "chat",
    "/v1/responses": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/completions": "text_completion",
}
# Where each inbound API keeps its prompt, for capture_content.
PROMPT_FIELDS = ("messages", "input", "prompt")
NUMBERS = (int, float)  # by exact type: a JSON true is no number


class SpanSink(Protocol):
    """Where finished spans go (`observe/span_pipe.py`): a tuple of `span_wire.FinishedSpan`'s fields."""

    def add(self, span: tuple[Any, ...]) -> None: ...

    def shutdown(self) -> None:
        """Export what was added (blocking)."""

    @property
    def dropped(self) -> int:
        """Spans dropped since the start, never exported (a full queue, an exporter down)."""


def new_trace_id() -> int:
    return getrandbits(128) or 1  # never the invalid all-zero id


class RequestTrace:
    """The SERVER span of one inbound request; it starts the spans of its attempts (`AttemptTrace`).

    Its attributes are built once, at its end, as one tuple of values in the order of
    `span_wire.REQUEST_ATTRIBUTES`: a value of None means "not set" and is dropped by the exporter process
    (`observe/span_export.py`), so the request path builds no dict and filters nothing.
    """

    __slots__ = (
        "_ended",
        "capture_content",
        "method",
        "operation",
        "parent_is_remote",
        "parent_span_id",
        "path",
        "provider_type",
        "request_id",
        "response_model",
        "sink",
        "span_id",
        "start_ns",
        "trace_id",
        "tracestate",
    )

    def __init__(
        self,
        sink: SpanSink,
        trace_id: int,
        parent_span_id: int,
        tracestate: str | None,
        method: str,
        path: str,
        request_id: str,
        capture_content: bool,
    ) -> None:
        """`parent_span_id`: the client's span (0: a root); `tracestate`: the client's, carried on."""
        self.start_ns = time.time_ns()
        self.sink = sink
        self.trace_id = trace_id
        self.span_id = getrandbits(64) or 1  # never the invalid all-zero id (inline: a call costs)
        self.parent_span_id = parent_span_id
        self.parent_is_remote = parent_span_id != 0
        self.tracestate = tracestate
        self.capture_content = capture_content
        self.method = method
        self.path = path
        self.request_id = request_id
        self.operation = OPERATIONS.get(path)
        self._ended = False
        self.provider_type: str | None = None  # of the last attempt
        self.response_model: str | None = None  # of the attempt that answered

    def attempt(self, number: int, provider: str, provider_type: str, model: str, url: str) -> AttemptTrace:
        self.provider_type = provider_type
        return AttemptTrace(self, number, provider, provider_type, model, url)

    def finish(
        self,
        record: RequestRecord,
        body: dict[str, Any] | None = None,
        answer: bytes | None = None,
        failure: GatewayError | None = None,
    ) -> None:
        """End the span with what the request's record says (once; later calls do nothing)."""
        if self._ended:
            return
        self._ended = True
        status = record.status_code
        error_type = record.error_code or (str(status) if status >= 400 else None)
        if record.stream_status == "error":
            error_type = stream_error_type(failure)
        max_tokens = temperature = top_p = None
        extra = None
        if body is not None:
            max_tokens = body.get("max_tokens")
            if max_tokens is None:
                max_tokens = body.get("max_completion_tokens", body.get("max_output_tokens"))
            # gen_ai.request.*: sampling parameters only, never content; a number (not a bool) or unset.
            if type(max_tokens) not in NUMBERS:
                max_tokens = None
            temperature, top_p = body.get("temperature"), body.get("top_p")
            if type(temperature) not in NUMBERS:
                temperature = None
            if type(top_p) not in NUMBERS:
                top_p = None
            if self.capture_content:
                extra = captured_content(body, answer)
        failed = status >= 500 or record.stream_status == "error"
        self.sink.add(
            (
                None,  # its name: the exporter's (span_wire.span_name)
                KIND_SERVER,
                self.trace_id,
                self.span_id,
                self.parent_span_id,
                self.parent_is_remote,
                self.tracestate,
                self.start_ns,
                time.time_ns(),
                (  # span_wire.REQUEST_ATTRIBUTES, in its order
                    self.method,
                    self.path,
                    self.request_id,
                    self.operation,
                    status,
                    record.attempts,
                    record.retries,
                    record.failovers,
                    record.stream,
                    record.model or None,
                    record.route,
                    record.provider,
                    record.key_name,  # the key's name, never its secret
                    record.config_version or None,
                    record.stream_status,
                    self.provider_type,
                    self.response_model,
                    record.time_to_first_chunk,
                    record.usage,
                    error_type,
                    max_tokens,
                    temperature,
                    top_p,
                ),
                extra,
                STATUS_ERROR if failed else STATUS_UNSET,
                error_type if failed else None,
            )
        )


class AttemptTrace:
    """The CLIENT span of one upstream attempt (`AttemptSpan` of `resilience/attempt_trace.py`); its
    attributes, like the request's, are one tuple of values (`span_wire.ATTEMPT_ATTRIBUTES`) built at its
    end."""

    __slots__ = ("_ended", "_request", "headers", "model", "number", "provider", "provider_type",
                 "span_id", "start_ns", "started", "url")  # fmt: skip
    recording = True

    def __init__(
        self, request: RequestTrace, number: int, provider: str, provider_type: str, model: str, url: str
    ) -> None:
        self._request = request
        self.start_ns = time.time_ns()
        self.started = time.perf_counter()
        self.span_id = span_id = getrandbits(64) or 1
        self.number = number
        self.provider = provider
        self.provider_type = provider_type
        self.model = model
        self.url = url
        traceparent = ("traceparent", f"00-{request.trace_id:032x}-{span_id:016x}-01")
        tracestate = request.tracestate
        self.headers: tuple[tuple[str, str], ...] = (
            (traceparent, ("tracestate", tracestate)) if tracestate else (traceparent,)
        )
        self._ended = False

    def completed(self, answer: Any, usage: dict[str, Any] | None) -> None:
        if self._ended:
            return
        model = answer_id = None
        if isinstance(answer, dict):
            model, answer_id = answer.get("model"), answer.get("id")
            if isinstance(model, str):
                self._request.response_model = model
            else:
                model = None
            if not isinstance(answer_id, str):
                answer_id = None
        self._end("ok", None, model, answer_id, usage, None, None, STATUS_UNSET)

    def failed(self, error: BaseException) -> None:
        if self._ended:
            return
        cancelled = isinstance(error, asyncio.CancelledError)
        error_type = "cancelled" if cancelled else attempt_error_type(error)
        status = error.status_code if isinstance(error, UpstreamStatusError) else None
        outcome = "cancelled" if cancelled else "error"
        self._end(outcome, error_type, None, None, None, None, status, STATUS_ERROR)

    def stream_finished(self, stats: StreamStats) -> None:
        if self._ended:
            return
        first_chunk = stats.first_chunk - self.started if stats.first_chunk else None
        model = stats.response_model or None
        if model:
            self._request.response_model = model
        if stats.status == "error":
            error_type = stream_error_type(stats.failure)
            self._end("error", error_type, model, None, stats.usage, first_chunk, None, STATUS_ERROR)
        else:
            self._end(stats.status, None, model, None, stats.usage, first_chunk, None, STATUS_UNSET)

    def _end(
        self,
        outcome: str,
        error_type: str | None,
        response_model: str | None,
        response_id: str | None,
        usage: dict[str, Any] | None,
        first_chunk: float | None,
        status: int | None,
        status_code: int,
    ) -> None:
        self._ended = True
        request = self._request
        request.sink.add(
            (
                None,  # its name: the exporter's (span_wire.span_name)
                KIND_CLIENT,
                request.trace_id,
                self.span_id,
                request.span_id,
                False,
                request.tracestate,
                self.start_ns,
                time.time_ns(),
                (  # span_wire.ATTEMPT_ATTRIBUTES, in its order
                    request.operation or "chat",
                    self.provider_type,
                    self.model,
                    self.provider,
                    self.number,
                    self.url,
                    outcome,
                    error_type,
                    status,
                    response_model,
                    response_id,
                    first_chunk,
                    usage,
                ),
                None,
                status_code,
                error_type if status_code == STATUS_ERROR else None,
            )
        )


def attempt_error_type(error: BaseException) -> str:
    """Low-cardinality: `503`, `timeout`, `connect_error` (what `retry_on` names), else the class."""
    if isinstance(error, UpstreamError):
        return error.retryable_kind
    if isinstance(error, GatewayError) and error.code:
        return error.code
    return type(error).__qualname__


def stream_error_type(failure: GatewayError | None) -> str:
    if failure is None:
        return "stream_error"
    return attempt_error_type(failure)


def captured_content(body: dict[str, Any], answer: bytes | None) -> dict[str, str]:
    """The prompt and (non-streamed) answer as JSON text: only with `capture_content: true`."""
    attributes: dict[str, str] = {}
    for field in PROMPT_FIELDS:
        if field in body:
            attributes["gen_ai.input.messages"] = orjson.dumps(body[field]).decode()
            break
    if "system" in body:
        attributes["gen_ai.system_instructions"] = orjson.dumps(body["system"]).decode()
    if answer:
        try:
            parsed = orjson.loads(answer)
        except orjson.JSONDecodeError:
            return attributes
        if isinstance(parsed, dict):
            choices = parsed.get("choices")
            output = (
                [choice.get("message", choice) for choice in choices if isinstance(choice, dict)]
                if isinstance(choices, list)
                else parsed.get("content", parsed.get("output"))
            )
            if output is not None:
                attributes["gen_ai.output.messages"] = orjson.dumps(output).decode()
    return attributes
