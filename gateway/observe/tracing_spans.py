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
from typing import Any
from urllib.parse import urlsplit

import orjson
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.errors import GatewayError, UpstreamError, UpstreamStatusError
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


class RequestTrace:
    """The SERVER span of one inbound request; it starts the spans of its attempts (`AttemptTracer`)."""

    __slots__ = (
        "_context",
        "_ended",
        "_propagator",
        "_tracer",
        "capture_content",
        "operation",
        "provider_type",
        "response_model",
        "span",
    )

    def __init__(
        self,
        tracer: Tracer,
        propagator: TraceContextTextMapPropagator,
        parent: Context | None,
        method: str,
        path: str,
        request_id: str,
        capture_content: bool,
    ) -> None:
        self._tracer = tracer
        self._propagator = propagator
        self.capture_content = capture_content
        self.operation = OPERATIONS.get(path)
        attributes: dict[str, str] = {
            "http.request.method": method,
            "url.path": path,
            "gateway.request_id": request_id,
        }
        if self.operation is not None:
            attributes["gen_ai.operation.name"] = self.operation
        self.span: Span = tracer.start_span(
            f"{method} {path}", context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        self._context = set_span_in_context(self.span)
        self._ended = False
        self.provider_type: str | None = None  # of the last attempt
        self.response_model: str | None = None  # of the attempt that answered

    def attempt(self, number: int, provider: str, provider_type: str, model: str, url: str) -> AttemptTrace:
        self.provider_type = provider_type
        return AttemptTrace(self, number, provider, provider_type, model, url)

    def start_attempt_span(self, name: str, attributes: dict[str, str | int]) -> Span:
        return self._tracer.start_span(
            name, context=self._context, kind=SpanKind.CLIENT, attributes=attributes
        )

    def trace_headers(self, span: Span) -> tuple[tuple[str, str], ...]:
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=set_span_in_context(span))
        return tuple(carrier.items())

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
        span = self.span
        if not span.is_recording():
            span.end()
            return
        status = record.status_code
        attributes: dict[str, Any] = {
            "http.response.status_code": status,
            "gateway.attempts": record.attempts,
            "gateway.retries": record.retries,
            "gateway.failovers": record.failovers,
            "gateway.stream": record.stream,
        }
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
        span.set_attributes(attributes)
        if status >= 500 or record.stream_status == "error":
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.end()


class AttemptTrace:
    """The CLIENT span of one upstream attempt (`AttemptSpan` of `resilience/attempt_trace.py`)."""

    __slots__ = ("_ended", "_request", "headers", "span", "started")

    def __init__(
        self, request: RequestTrace, number: int, provider: str, provider_type: str, model: str, url: str
    ) -> None:
        self._request = request
        self.started = time.perf_counter()
        operation = request.operation or "chat"
        attributes: dict[str, str | int] = {
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
        self.span = request.start_attempt_span(f"{operation} {model}", attributes)
        self.headers = request.trace_headers(self.span)
        self._ended = False

    def completed(self, content: bytes, usage: dict[str, Any] | None) -> None:
        if self._ended:
            return
        self._ended = True
        attributes: dict[str, Any] = {"gateway.attempt.outcome": "ok"}
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
        self.span.set_attributes(attributes)
        self.span.end()

    def failed(self, error: BaseException) -> None:
        if self._ended:
            return
        self._ended = True
        cancelled = isinstance(error, asyncio.CancelledError)
        error_type = "cancelled" if cancelled else attempt_error_type(error)
        attributes: dict[str, Any] = {
            "gateway.attempt.outcome": "cancelled" if cancelled else "error",
            "error.type": error_type,
        }
        if isinstance(error, UpstreamStatusError):
            attributes["http.response.status_code"] = error.status_code
        self.span.set_attributes(attributes)
        self.span.set_status(Status(StatusCode.ERROR, error_type))
        self.span.end()

    def stream_finished(self, stats: StreamStats) -> None:
        if self._ended:
            return
        self._ended = True
        outcome = {"ok": "ok", "error": "error"}.get(stats.status, stats.status)  # or disconnected
        attributes: dict[str, Any] = {"gateway.attempt.outcome": outcome}
        if stats.first_chunk:
            attributes["gen_ai.response.time_to_first_chunk"] = stats.first_chunk - self.started
        if stats.response_model:
            attributes["gen_ai.response.model"] = self._request.response_model = stats.response_model
        attributes.update(usage_attributes(stats.usage))
        if stats.status == "error":
            error_type = stream_error_type(stats.failure)
            attributes["error.type"] = error_type
            self.span.set_status(Status(StatusCode.ERROR, error_type))
        self.span.set_attributes(attributes)
        self.span.end()


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
