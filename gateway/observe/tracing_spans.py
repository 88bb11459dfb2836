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
import random
import time
from typing import Any, Protocol
from urllib.parse import urlsplit

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


class SpanSink(Protocol):
    """Where finished spans go (`observe/span_pipe.py`): a tuple of `span_wire.FinishedSpan`'s fields."""

    def add(self, span: tuple[Any, ...]) -> None: ...

    def shutdown(self) -> None:
        """Export what was added (blocking)."""


def new_span_id() -> int:
    return random.getrandbits(64) or 1  # never the invalid all-zero id


def new_trace_id() -> int:
    return random.getrandbits(128) or 1


class RequestTrace:
    """The SERVER span of one inbound request; it starts the spans of its attempts (`AttemptTrace`)."""

    __slots__ = (
        "_ended",
        "attributes",
        "capture_content",
        "name",
        "operation",
        "parent_is_remote",
        "parent_span_id",
        "provider_type",
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
        self.span_id = new_span_id()
        self.parent_span_id = parent_span_id
        self.parent_is_remote = parent_span_id != 0
        self.tracestate = tracestate
        self.capture_content = capture_content
        self.name = f"{method} {path}"
        self.operation = OPERATIONS.get(path)
        self.attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": path,
            "gateway.request_id": request_id,
        }
        if self.operation is not None:
            self.attributes["gen_ai.operation.name"] = self.operation
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
        attributes = self.attributes
        attributes["http.response.status_code"] = status
        attributes["gateway.attempts"] = record.attempts
        attributes["gateway.retries"] = record.retries
        attributes["gateway.failovers"] = record.failovers
        attributes["gateway.stream"] = record.stream
        if record.model:
            attributes["gen_ai.request.model"] = record.model
        optional = {
            "gateway.route": record.route,
            "gateway.provider": record.provider,
            "gateway.key": record.key_name,  # the key's name, never its secret
            "gateway.config_version": record.config_version or None,
            "gateway.stream.status": record.stream_status,
            "gen_ai.provider.name": self.provider_type,
            "gen_ai.response.model": self.response_model,
            "gen_ai.response.time_to_first_chunk": record.time_to_first_chunk,
        }
        attributes.update((name, value) for name, value in optional.items() if value is not None)
        if record.usage is not None:
            attributes["gen_ai.usage.input_tokens"] = record.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = record.completion_tokens
        if body is not None:
            attributes.update(request_parameters(body))
            if self.capture_content:
                attributes.update(captured_content(body, answer))
        error_type = record.error_code or (str(status) if status >= 400 else None)
        if record.stream_status == "error":
            error_type = stream_error_type(failure)
        if error_type is not None:
            attributes["error.type"] = error_type
        failed = status >= 500 or record.stream_status == "error"
        self.sink.add(
            (
                self.name,
                KIND_SERVER,
                self.trace_id,
                self.span_id,
                self.parent_span_id,
                self.parent_is_remote,
                self.tracestate,
                self.start_ns,
                time.time_ns(),
                attributes,
                STATUS_ERROR if failed else STATUS_UNSET,
                error_type if failed else None,
            )
        )


class AttemptTrace:
    """The CLIENT span of one upstream attempt (`AttemptSpan` of `resilience/attempt_trace.py`)."""

    __slots__ = ("_ended", "_request", "attributes", "headers", "name", "span_id", "start_ns", "started")
    recording = True

    def __init__(
        self, request: RequestTrace, number: int, provider: str, provider_type: str, model: str, url: str
    ) -> None:
        self._request = request
        self.start_ns = time.time_ns()
        self.started = time.perf_counter()
        self.span_id = new_span_id()
        operation = request.operation or "chat"
        self.name = f"{operation} {model}"
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider_type,
            "gen_ai.request.model": model,
            "gateway.provider": provider,
            "gateway.attempt": number,
        }
        parts = urlsplit(url)
        if parts.hostname:
            attributes["server.address"] = parts.hostname
            attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
        self.attributes = attributes
        traceparent = ("traceparent", f"00-{request.trace_id:032x}-{self.span_id:016x}-01")
        tracestate = request.tracestate
        self.headers: tuple[tuple[str, str], ...] = (
            (traceparent, ("tracestate", tracestate)) if tracestate else (traceparent,)
        )
        self._ended = False

    def completed(self, content: bytes, usage: dict[str, Any] | None) -> None:
        if self._ended:
            return
        attributes = self.attributes
        attributes["gateway.attempt.outcome"] = "ok"
        try:
            answer = orjson.loads(content)
        except orjson.JSONDecodeError:
            answer = None
        if isinstance(answer, dict):
            model, answer_id = answer.get("model"), answer.get("id")
            if isinstance(model, str):
                attributes["gen_ai.response.model"] = self._request.response_model = model
            if isinstance(answer_id, str):
                attributes["gen_ai.response.id"] = answer_id
        attributes.update(usage_attributes(usage))
        self._end(STATUS_UNSET, None)

    def failed(self, error: BaseException) -> None:
        if self._ended:
            return
        cancelled = isinstance(error, asyncio.CancelledError)
        error_type = "cancelled" if cancelled else attempt_error_type(error)
        attributes = self.attributes
        attributes["gateway.attempt.outcome"] = "cancelled" if cancelled else "error"
        attributes["error.type"] = error_type
        if isinstance(error, UpstreamStatusError):
            attributes["http.response.status_code"] = error.status_code
        self._end(STATUS_ERROR, error_type)

    def stream_finished(self, stats: StreamStats) -> None:
        if self._ended:
            return
        attributes = self.attributes
        attributes["gateway.attempt.outcome"] = {"ok": "ok", "error": "error"}.get(stats.status, stats.status)
        if stats.first_chunk:
            attributes["gen_ai.response.time_to_first_chunk"] = stats.first_chunk - self.started
        if stats.response_model:
            attributes["gen_ai.response.model"] = self._request.response_model = stats.response_model
        attributes.update(usage_attributes(stats.usage))
        if stats.status == "error":
            error_type = stream_error_type(stats.failure)
            attributes["error.type"] = error_type
            self._end(STATUS_ERROR, error_type)
        else:
            self._end(STATUS_UNSET, None)

    def _end(self, status_code: int, status_description: str | None) -> None:
        self._ended = True
        request = self._request
        request.sink.add(
            (
                self.name,
                KIND_CLIENT,
                request.trace_id,
                self.span_id,
                request.span_id,
                False,
                request.tracestate,
                self.start_ns,
                time.time_ns(),
                self.attributes,
                status_code,
                status_description,
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


def usage_attributes(usage: dict[str, Any] | None) -> dict[str, int]:
    if not usage:
        return {}
    attributes = {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if isinstance(prompt, int):
        attributes["gen_ai.usage.input_tokens"] = prompt
    if isinstance(completion, int):
        attributes["gen_ai.usage.output_tokens"] = completion
    return attributes


def request_parameters(body: dict[str, Any]) -> dict[str, Any]:
    """gen_ai.request.* of the client's body: sampling parameters only, never content."""
    attributes: dict[str, Any] = {}
    for field, name in (
        ("max_tokens", "gen_ai.request.max_tokens"),
        ("max_completion_tokens", "gen_ai.request.max_tokens"),
        ("max_output_tokens", "gen_ai.request.max_tokens"),
        ("temperature", "gen_ai.request.temperature"),
        ("top_p", "gen_ai.request.top_p"),
    ):
        value = body.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[name] = value
    return attributes


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
