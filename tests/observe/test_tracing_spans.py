"""A sampled request's tracer (`observe/tracing_spans.py`) through its life, read back the way the exporter
process reads it (`span_wire.frame` -> `read_frame` -> `SpanBuilder.spans`): attempts in order, each end
taken once, a request cancelled at shutdown still exported."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from gateway.errors import UpstreamStatusError
from gateway.observe.span_export import SpanBuilder
from gateway.observe.span_wire import frame, read_frame, spans_of
from gateway.observe.tracing_spans import RequestTrace
from gateway.records import RequestRecord

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
URL = "http://127.0.0.1:8080/v1"


class Keep:
    dropped = 0

    def __init__(self) -> None:
        self.requests: list[tuple[Any, ...]] = []

    def add(self, request: tuple[Any, ...]) -> None:
        self.requests.append(request)

    def shutdown(self) -> None:
        pass


def exported(sink: Keep) -> list[ReadableSpan]:
    """The spans of what `sink` got, after a trip through the pipe's framing."""
    (batch,) = [read_frame(io.BytesIO(frame(sink.requests)))]
    builder = SpanBuilder("gateway")
    return [span for item in batch for span in builder.spans(item)]


def record(status: int = 200, attempts: int = 1) -> RequestRecord:
    usage = {"prompt_tokens": 7, "completion_tokens": 3}
    return RequestRecord("req_1", "alias", "alias", "b", "m", False, status, attempts, 0.01, usage=usage)


def test_a_failover_is_two_client_spans_in_order_under_the_server_span() -> None:
    sink = Keep()
    trace = RequestTrace(sink, TRACE_ID, "", None, "POST", "/v1/chat/completions")
    first = dict(trace.attempt(1, "a", "openai", "m", URL))
    trace.failed(UpstreamStatusError(503, provider="a"))
    second = dict(trace.attempt(2, "b", "deepseek", "m", URL))
    trace.completed({"model": "m-0613", "id": "chatcmpl-9"}, {"prompt_tokens": 7})
    trace.finish(record(attempts=2), {"max_tokens": 20, "temperature": True})
    assert len(sink.requests) == 1 and spans_of(sink.requests[0]) == 3
    server, failed, answered = exported(sink)
    assert server.kind is SpanKind.SERVER and server.context is not None
    assert server.attributes is not None
    assert server.attributes["gen_ai.provider.name"] == "deepseek"
    assert server.attributes["gen_ai.response.model"] == "m-0613"
    assert server.attributes["gen_ai.request.max_tokens"] == 20
    assert "gen_ai.request.temperature" not in server.attributes  # a JSON true is no number
    for span, sent in ((failed, first), (answered, second)):
        assert span.parent is not None and span.parent.span_id == server.context.span_id
        assert span.context is not None
        assert sent["traceparent"] == f"00-{TRACE_ID}-{span.context.span_id:016x}-01"
    assert failed.attributes is not None and answered.attributes is not None
    assert (failed.status.status_code, failed.status.description) == (StatusCode.ERROR, "503")
    assert failed.attributes["http.response.status_code"] == 503
    assert answered.attributes["gateway.attempt.outcome"] == "ok"
    assert answered.attributes["gen_ai.response.id"] == "chatcmpl-9"
    assert answered.start_time is not None and failed.end_time is not None
    assert answered.start_time >= failed.end_time


def test_each_end_is_taken_once_and_nothing_after_the_request_ends() -> None:
    sink = Keep()
    trace = RequestTrace(sink, TRACE_ID, "", None, "POST", "/v1/chat/completions")
    trace.attempt(1, "a", "openai", "m", URL)
    trace.completed({"model": "m"}, None)
    trace.failed(RuntimeError("reported after the answer"))  # ignored: the attempt has ended
    trace.finish(record())
    trace.finish(record(500))  # ignored: the request has ended
    trace.completed({"model": "late"}, None)
    _, attempt = exported(sink)
    assert attempt.attributes is not None
    assert attempt.attributes["gateway.attempt.outcome"] == "ok"
    assert attempt.status.status_code is StatusCode.UNSET
    assert len(sink.requests) == 1


def test_a_request_cancelled_at_shutdown_is_exported_as_cancelled() -> None:
    sink = Keep()
    trace = RequestTrace(sink, TRACE_ID, "b7ad6b7169203331", "v=1", "POST", "/v1/messages")
    trace.attempt(1, "a", "anthropic", "claude", URL)
    trace.failed(asyncio.CancelledError())
    trace.cancelled("req_7")
    trace.finish(record())  # nothing: it ended
    server, attempt = exported(sink)
    assert server.attributes is not None
    assert server.attributes["gateway.request_id"] == "req_7"
    assert (server.status.status_code, server.status.description) == (StatusCode.ERROR, "cancelled")
    assert "http.response.status_code" not in server.attributes
    assert server.parent is not None and server.parent.is_remote
    assert (attempt.status.status_code, attempt.status.description) == (StatusCode.ERROR, "cancelled")
