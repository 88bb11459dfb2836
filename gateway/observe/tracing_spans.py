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
from gateway.observe.span_wire import REQUEST_ATTRIBUTES
from gateway.records import RequestRecord
from gateway.streaming.stats import StreamStats

# Where each inbound API keeps its prompt, for capture_content.
PROMPT_FIELDS = ("messages", "input", "prompt")
NUMBERS = (int, float)  # by exact type: a JSON true is no number
ERROR_TYPE_AT = REQUEST_ATTRIBUTES.index("error.type")


class SpanSink(Protocol):
    """Where traced requests go (`observe/span_pipe.py`): a tuple of `span_wire.TracedRequest`'s fields."""

    def add(self, request: tuple[Any, ...]) -> None: ...

    def shutdown(self) -> None:
        """Export what was added (blocking)."""

    @property
    def dropped(self) -> int:
        """Spans dropped since the start, never exported (a full queue, an exporter down)."""


def new_trace_id() -> str:
    """32 lower-case hex digits, as traceparent carries them (never the invalid all-zero id)."""
    return (getrandbits(128) or 1).to_bytes(16).hex()


class RequestTrace:
    """The spans of one sampled request: its SERVER span, and a CLIENT span per upstream attempt, which
    the attempt loop starts and ends through this object (`resilience/attempt_trace.py`'s `AttemptTracer`).

    Nothing is built until it is needed, and then as plain values: an attempt is a list (its span id,
    start and what it was sent to, then its end and outcome appended), the request at its end one tuple
    (`span_wire.TracedRequest`) holding them, queued once. A value of None means "not set" and is dropped
    by the exporter process (`observe/span_export.py`), which also works out what can be derived.
    """

    __slots__ = ("_ended", "attempts", "current", "method", "parent_span_id", "path", "sink", "span_id",
                 "start_ns", "started", "trace_id", "traced_content", "tracestate")  # fmt: skip
    recording = True

    def __init__(
        self,
        sink: SpanSink,
        trace_id: str,
        parent_span_id: str,
        tracestate: str | None,
        method: str,
        path: str,
        capture_content: bool = False,
    ) -> None:
        """`trace_id` and `parent_span_id` in hex, as traceparent carries them (`int.to_bytes(...).hex()`
        costs a third of a `:032x` format); `parent_span_id`: the client's span ("": a root);
        `tracestate`: the client's, carried on."""
        self.start_ns = time.time_ns()
        self.sink = sink
        self.trace_id = trace_id
        # An int: the request's own span id goes in no header, only to the exporter (never the invalid 0).
        self.span_id = getrandbits(64) or 1
        self.parent_span_id = parent_span_id
        self.tracestate = tracestate
        self.method = method
        self.path = path
        self.traced_content = capture_content
        self.attempts: list[list[Any]] = []
        self.current: list[Any] | None = None  # the attempt started and not yet ended
        self._ended = False

    def attempt(
        self, number: int, provider: str, provider_type: str, model: str, url: str
    ) -> tuple[tuple[str, str], ...]:
        """Start the span of attempt `number`; returns the headers that carry it upstream."""
        span_id = (getrandbits(64) or 1).to_bytes(8).hex()
        self.current = attempt = [span_id, time.time_ns(), provider_type, model, provider, number, url]
        self.attempts.append(attempt)
        self.started = time.perf_counter()  # the attempt's time to first chunk is from here
        traceparent = ("traceparent", f"00-{self.trace_id}-{span_id}-01")
        tracestate = self.tracestate
        return (traceparent, ("tracestate", tracestate)) if tracestate else (traceparent,)

    def completed(self, answer: Any, usage: dict[str, Any] | None) -> None:
        """The current attempt's whole answer arrived (`answer`: its JSON, parsed; None: not JSON)."""
        attempt = self.current  # None: no attempt open (its end was reported, or the request's)
        if attempt is None:
            return
        self.current = None
        model = answer_id = None
        if isinstance(answer, dict):
            model, answer_id = answer.get("model"), answer.get("id")
            if not isinstance(model, str):
                model = None
            if not isinstance(answer_id, str):
                answer_id = None
        attempt += (time.time_ns(), "ok", None, None, model, answer_id, None, usage)

    def failed(self, error: BaseException) -> None:
        """The current attempt failed or was cancelled before an answer (or a stream's first event)."""
        attempt = self.current  # None: no attempt open (its end was reported, or the request's)
        if attempt is None:
            return
        self.current = None
        if isinstance(error, asyncio.CancelledError):
            attempt += (time.time_ns(), "cancelled", "cancelled", None, None, None, None, None)
            return
        status = error.status_code if isinstance(error, UpstreamStatusError) else None
        attempt += (time.time_ns(), "error", attempt_error_type(error), status, None, None, None, None)

    def stream_finished(self, stats: StreamStats) -> None:
        """The current attempt's relayed stream ended, however (a finish callback of the relay)."""
        attempt = self.current  # None: no attempt open (its end was reported, or the request's)
        if attempt is None:
            return
        self.current = None
        first_chunk = stats.first_chunk - self.started if stats.first_chunk else None
        status = stats.status
        error_type = stream_error_type(stats.failure) if status == "error" else None
        model = stats.response_model or None
        attempt += (time.time_ns(), status, error_type, None, model, None, first_chunk, stats.usage)

    def cancelled(self, request_id: str) -> None:
        """End the request cancelled from outside (shutdown) before an answer, so no record came: its
        spans are queued with what is known, `error.type` `cancelled` (once; `finish` after does nothing)."""
        if self._ended:
            return
        self._ended = True
        self.current = None
        values: list[Any] = [None] * len(REQUEST_ATTRIBUTES)
        values[:3] = self.method, self.path, request_id
        values[ERROR_TYPE_AT] = "cancelled"
        ids = (self.trace_id, self.span_id, self.parent_span_id, self.tracestate)
        self.sink.add((*ids, self.start_ns, time.time_ns(), tuple(values), None, self.attempts))

    def finish(
        self,
        record: RequestRecord,
        body: dict[str, Any] | None = None,
        answer: bytes | None = None,
        failure: GatewayError | None = None,
    ) -> None:
        """End the request with what its record says and queue its spans (once; later calls do nothing)."""
        if self._ended:
            return
        self._ended = True
        self.current = None  # what is queued stays as it is: a later end of an attempt is ignored
        status = record.status_code
        error_type = record.error_code or (str(status) if status >= 400 else None)
        stream_status = record.stream_status
        if stream_status == "error":
            error_type = stream_error_type(failure)
        max_tokens = temperature = top_p = None
        extra = None
        if body is not None:
            get = body.get
            max_tokens = get("max_tokens")
            if max_tokens is None:
                max_tokens = get("max_completion_tokens", get("max_output_tokens"))
            # gen_ai.request.*: sampling parameters only, never content; a number (not a bool) or unset.
            if type(max_tokens) not in NUMBERS:
                max_tokens = None
            temperature, top_p = get("temperature"), get("top_p")
            if type(temperature) not in NUMBERS:
                temperature = None
            if type(top_p) not in NUMBERS:
                top_p = None
            if self.traced_content:
                extra = captured_content(body, answer)
        self.sink.add(
            (
                self.trace_id,
                self.span_id,
                self.parent_span_id,
                self.tracestate,
                self.start_ns,
                time.time_ns(),
                (  # span_wire.REQUEST_ATTRIBUTES, in its order
                    self.method,
                    self.path,
                    record.request_id,
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
                    stream_status,
                    record.time_to_first_chunk,
                    record.usage,
                    error_type,
                    max_tokens,
                    temperature,
                    top_p,
                ),
                extra,
                self.attempts,
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
