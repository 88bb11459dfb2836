"""The span wire (`observe/span_wire.py`) and the exporter's side of it (`observe/span_export.py`): frames
round-trip, a cut or oversized frame is no message, and a wire tuple becomes the SDK span it stands for,
under the SDK's attribute limits."""

from __future__ import annotations

import io

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from gateway import __version__
from gateway.observe.span_export import SpanBuilder, export_all
from gateway.observe.span_pipe import batch_settings
from gateway.observe.span_wire import (
    ATTEMPT_ATTRIBUTES,
    ATTEMPT_ENDED,
    ATTEMPT_STARTED,
    REQUEST_ATTRIBUTES,
    URL,
    USAGE,
    frame,
    read_frame,
    spans_of,
)

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7


def hexed(span_id: int) -> str:
    return f"{span_id:016x}"


def attempt(span_id: int = 0xA1, ended: dict[str, object] | None = None, **started: object) -> list[object]:
    """An attempt's list: what it was sent to (`started`, by name), then its end (`ended`; None: none)."""
    values = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "m", **started}
    fields: list[object] = [hexed(span_id), 1_100, *(values.get(name) for name in ATTEMPT_STARTED)]
    if ended is not None:
        fields += [1_900, *(ended.get(name) for name in ATTEMPT_ENDED)]
    return fields


def request(
    attributes: dict[str, object] | None = None, attempts: list[list[object]] | None = None, **changes: object
) -> tuple[object, ...]:
    """A traced request's wire tuple; `attributes` by name (its kind's as values, others as extras)."""
    named = attributes if attributes is not None else {"gateway.route": "alias", "gateway.attempts": 1}
    fields: dict[str, object] = {
        "trace_id": f"{TRACE_ID:032x}",
        "span_id": SPAN_ID,
        "parent_span_id": "",
        "tracestate": None,
        "start_ns": 1_000,
        "end_ns": 2_000,
        "values": tuple(named.get(name) for name in REQUEST_ATTRIBUTES),
        "extra_attributes": {k: v for k, v in named.items() if k not in REQUEST_ATTRIBUTES} or None,
        "attempts": attempts if attempts is not None else [],
    }
    fields.update(changes)
    return tuple(fields.values())


def test_frames_round_trip_and_end_cleanly() -> None:
    batch = [request(), request(attempts=[attempt(ended={"gateway.attempt.outcome": "ok"})])]
    stream = io.BytesIO(frame({"service": "gateway"}) + frame(batch))
    assert read_frame(stream) == {"service": "gateway"}
    assert read_frame(stream) == [[*item[:6], list(item[6]), *item[7:]] for item in batch]  # tuples: lists
    assert read_frame(stream) is None
    assert [spans_of(item) for item in batch] == [1, 2]


def test_a_cut_frame_is_the_end_not_a_message() -> None:
    data = frame([request()])
    assert read_frame(io.BytesIO(data[:-3])) is None
    assert read_frame(io.BytesIO(data[:2])) is None


def test_a_value_json_cannot_carry_is_refused_when_framed() -> None:
    with pytest.raises(TypeError):
        frame([request({"gateway.attempts": 2**64})])  # beyond 64 bits


def test_an_oversized_length_is_refused_before_reading() -> None:
    with pytest.raises(ValueError, match="over the limit"):
        read_frame(io.BytesIO(b"\xff\xff\xff\xff"))


def test_a_root_server_span() -> None:
    named = {"http.request.method": "POST", "url.path": "/v1/chat/completions", "gateway.attempts": 1}
    (span,) = SpanBuilder("edge").spans(request(named))
    assert span.name == "POST /v1/chat/completions"
    assert span.kind is SpanKind.SERVER
    assert span.context is not None
    assert (span.context.trace_id, span.context.span_id) == (TRACE_ID, SPAN_ID)
    assert span.context.trace_flags.sampled
    assert span.parent is None
    assert (span.start_time, span.end_time) == (1_000, 2_000)
    assert dict(span.attributes or {}) == {**named, "gen_ai.operation.name": "chat"}  # from its path
    assert span.status.status_code is StatusCode.UNSET
    assert span.resource.attributes["service.name"] == "edge"
    assert span.resource.attributes["service.version"] == __version__
    assert span.instrumentation_scope is not None
    assert (span.instrumentation_scope.name, span.instrumentation_scope.version) == ("gateway", __version__)


def test_a_client_parent_is_remote_and_its_tracestate_is_kept_on_every_span() -> None:
    spans = SpanBuilder("gateway").spans(
        request(
            parent_span_id=hexed(0xB7AD6B7169203331),
            tracestate="vendor=7,other=x",
            attempts=[attempt(ended={"gateway.attempt.outcome": "ok"})],
        )
    )
    server, _ = spans
    assert server.parent is not None
    assert (server.parent.span_id, server.parent.is_remote) == (0xB7AD6B7169203331, True)
    for span in spans:
        assert span.context is not None
        assert span.context.trace_state.to_header() == "vendor=7,other=x"


def test_attempts_are_client_spans_children_of_their_request_in_order() -> None:
    ok = {"gateway.attempt.outcome": "ok", "gen_ai.response.model": "m-2024", "gen_ai.response.id": "c1"}
    failed = {"gateway.attempt.outcome": "error", "error.type": "503", "http.response.status_code": 503}
    named = {"http.request.method": "POST", "url.path": "/v1/messages", "http.response.status_code": 200}
    server, first, second = SpanBuilder("gateway").spans(
        request(
            named,
            attempts=[
                attempt(0xA1, failed, **{"gateway.attempt": 1, "gateway.provider": "a"}),
                attempt(0xA2, ok, **{"gen_ai.provider.name": "anthropic", "gateway.attempt": 2}),
            ],
        )
    )
    assert server.status.status_code is StatusCode.UNSET
    assert server.attributes is not None
    assert server.attributes["gen_ai.provider.name"] == "anthropic"  # of the last attempt
    assert server.attributes["gen_ai.response.model"] == "m-2024"  # of the attempt that answered
    for span in (first, second):
        assert span.kind is SpanKind.CLIENT
        assert span.context is not None and server.context is not None
        assert span.context.trace_id == TRACE_ID
        assert span.parent is not None and span.parent.span_id == SPAN_ID and not span.parent.is_remote
        assert (span.start_time, span.end_time) == (1_100, 1_900)
    assert first.context is not None and first.context.span_id == 0xA1
    assert (first.status.status_code, first.status.description) == (StatusCode.ERROR, "503")
    assert dict(first.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "m",
        "gateway.provider": "a",
        "gateway.attempt": 1,
        **failed,
    }
    assert second.status.status_code is StatusCode.UNSET
    assert second.name == "chat m"


def test_an_attempt_the_request_did_not_end_ends_with_it() -> None:
    _, client = SpanBuilder("gateway").spans(request(attempts=[attempt()]))
    assert (client.start_time, client.end_time) == (1_100, 2_000)
    assert client.attributes is not None and "gateway.attempt.outcome" not in client.attributes
    assert client.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(
    ("named", "description"),
    [
        ({"http.response.status_code": 502, "error.type": "upstream_error"}, "upstream_error"),
        (
            {"http.response.status_code": 200, "gateway.stream.status": "error", "error.type": "timeout"},
            "timeout",
        ),
    ],
)
def test_a_request_answered_5xx_or_a_broken_stream_is_an_error(
    named: dict[str, object], description: str
) -> None:
    (span,) = SpanBuilder("gateway").spans(request(named))
    assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, description)


def test_a_4xx_answer_is_no_span_error() -> None:
    (span,) = SpanBuilder("gateway").spans(request({"http.response.status_code": 429, "error.type": "429"}))
    assert span.status.status_code is StatusCode.UNSET


def test_a_cancelled_attempt_is_an_error() -> None:
    cancelled = {"gateway.attempt.outcome": "cancelled", "error.type": "cancelled"}
    _, client = SpanBuilder("gateway").spans(request(attempts=[attempt(ended=cancelled)]))
    assert (client.status.status_code, client.status.description) == (StatusCode.ERROR, "cancelled")


def test_the_sdk_attribute_limits_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2")
    (span,) = SpanBuilder("gateway").spans(request({"gateway.route": "abcdefgh", "b": 1, "c": 2}))
    assert dict(span.attributes or {}) == {"b": 1, "c": 2}  # the oldest dropped, as the SDK drops
    assert span.dropped_attributes == 1
    (span,) = SpanBuilder("gateway").spans(request({"gateway.route": "abcdefgh"}))
    assert dict(span.attributes or {}) == {"gateway.route": "abcd"}


def test_an_attribute_of_none_is_not_set() -> None:
    # The request path writes every attribute it knows, None for "not set" (observe/tracing_spans.py).
    (span,) = SpanBuilder("gateway").spans(request({"error.type": None, "gateway.attempts": 1}))
    assert dict(span.attributes or {}) == {"gateway.attempts": 1}
    assert span.dropped_attributes == 0


def test_each_value_is_named_by_its_place_in_its_kinds_names() -> None:
    values = tuple(f"value {place}" for place in range(len(REQUEST_ATTRIBUTES)))
    extra = {"gen_ai.input.messages": "[]"}
    attempt_values = [f"attempt {place}" for place in range(len(ATTEMPT_ATTRIBUTES))]
    started = attempt_values[: len(ATTEMPT_STARTED)]
    wire_attempt = [hexed(0xA1), 1_100, *started, 1_900, *attempt_values[len(ATTEMPT_STARTED) :]]
    server, client = SpanBuilder("gateway").spans(
        request(values=values, extra_attributes=extra, attempts=[wire_attempt])
    )
    expected = {name: value for name, value in zip(REQUEST_ATTRIBUTES, values, strict=True) if name != USAGE}
    expected["gen_ai.provider.name"] = started[0]
    expected["gen_ai.response.model"] = attempt_values[len(ATTEMPT_STARTED) + 3]
    assert dict(server.attributes or {}) == {**expected, **extra}
    named = {name: value for name, value in zip(ATTEMPT_ATTRIBUTES, attempt_values, strict=True)}
    del named[USAGE], named[URL]
    assert dict(client.attributes or {}) == {"gen_ai.operation.name": "chat", **named}


def test_the_exporter_works_out_token_counts_server_and_names() -> None:
    """What the request path sends as it has it (the usage object, the provider's URL)."""
    named = {"http.request.method": "POST", "url.path": "/v1/embeddings", USAGE: {"prompt_tokens": 7}}
    sent = {
        "gen_ai.request.model": "deepseek-chat",
        URL: "https://api.deepseek.com/v1",
    }
    usage = {USAGE: {"prompt_tokens": 7, "completion_tokens": True}}  # a JSON true is no count
    server, client = SpanBuilder("gateway").spans(request(named, attempts=[attempt(ended=usage, **sent)]))
    assert server.name == "POST /v1/embeddings"
    assert dict(server.attributes or {}) == {
        "http.request.method": "POST",
        "url.path": "/v1/embeddings",
        "gen_ai.operation.name": "embeddings",
        "gen_ai.provider.name": "openai",
        "gen_ai.usage.input_tokens": 7,  # no completion_tokens: unset, not 0
    }
    assert client.name == "embeddings deepseek-chat"
    assert dict(client.attributes or {}) == {
        "gen_ai.operation.name": "embeddings",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "deepseek-chat",
        "server.address": "api.deepseek.com",
        "server.port": 443,
        "gen_ai.usage.input_tokens": 7,
    }
    sent[URL] = "http://127.0.0.1:8080"
    _, client = SpanBuilder("gateway").spans(request(named, attempts=[attempt(**sent)]))
    assert client.attributes is not None and client.attributes["server.port"] == 8080


def test_a_path_of_no_genai_operation_has_none() -> None:
    named = {"url.path": "/v1/messages/count_tokens"}
    server, client = SpanBuilder("gateway").spans(request(named, attempts=[attempt()]))
    assert server.attributes is not None and "gen_ai.operation.name" not in server.attributes
    assert client.attributes is not None and client.attributes["gen_ai.operation.name"] == "chat"


@pytest.mark.parametrize(
    "wrong",
    [
        {"values": ("POST",)},  # a count of values that is not its kind's
        {"attempts": [[hexed(0xA1), 1_100, "openai"]]},  # an attempt cut short
        {"attempts": [[*attempt(), 1_900, "ok"]]},  # an end without its values
    ],
)
def test_a_request_with_wrong_fields_is_unreadable(wrong: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SpanBuilder("gateway").spans(request(**wrong))


def test_the_console_exporter_prints_every_span(capsys: pytest.CaptureFixture[str]) -> None:
    settings = {"exporters": ["console"], "endpoint": None, "service": "gateway"}
    named = {"http.request.method": "POST", "url.path": "/v1/chat/completions"}
    batches = frame(settings) + frame([request(named, attempts=[attempt(model="m")])])
    export_all(io.BytesIO(batches))
    printed = capsys.readouterr().out
    assert '"name": "POST /v1/chat/completions"' in printed and '"name": "chat m"' in printed
    assert '"trace_id": "0x4bf92f3577b34da6a3ce929d0e0e4736"' in printed


def test_an_unreadable_request_is_dropped_and_the_rest_exported(capsys: pytest.CaptureFixture[str]) -> None:
    settings = {"exporters": ["console"], "endpoint": None, "service": "gateway"}
    after = request({"http.request.method": "AFTER", "url.path": "/"})
    unreadable = [[("too", "short")], [request(values=())], [request(attempts=[[1]]), after]]
    batches = b"".join(frame(batch) for batch in unreadable)
    export_all(io.BytesIO(frame(settings) + batches))
    assert '"name": "AFTER /"' in capsys.readouterr().out


def test_an_export_holds_at_most_the_batch_size_of_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    exported: list[int] = []

    class Counting:
        def export(self, spans: list[object]) -> None:
            exported.append(len(spans))

        def shutdown(self) -> None:
            pass

    monkeypatch.setattr("gateway.observe.span_export.build_exporters", lambda settings: [Counting()])
    settings = {"exporters": ["otlp"], "endpoint": None, "service": "gateway", "batch_size": 4}
    two_spans = request(attempts=[attempt()])
    export_all(io.BytesIO(frame(settings) + frame([two_spans] * 5)))
    assert exported == [4, 4, 2]  # a request's spans are never split between two exports


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, (5.0, 2048, 512)),  # the SDK's defaults
        ({"OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_BSP_MAX_QUEUE_SIZE": "100"}, (0.05, 100, 100)),
        ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "x", "OTEL_BSP_SCHEDULE_DELAY": "-1"}, (5.0, 2048, 512)),
    ],
)
def test_batch_settings_read_otel_bsp(environ: dict[str, str], expected: tuple[float, int, int]) -> None:
    assert batch_settings(environ) == expected
