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
    ATTRIBUTE_NAMES,
    KIND_CLIENT,
    KIND_SERVER,
    REQUEST_ATTRIBUTES,
    STATUS_ERROR,
    STATUS_UNSET,
    URL,
    USAGE,
    frame,
    read_frame,
)

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def wire_span(attributes: dict[str, object] | None = None, **changes: object) -> tuple[object, ...]:
    """A wire tuple; `attributes` by name (those of its kind as its values, others as extras)."""
    named = attributes if attributes is not None else {"gateway.route": "alias", "gateway.attempts": 1}
    kind = changes.get("kind", KIND_SERVER)
    names = ATTRIBUTE_NAMES.get(kind, ()) if isinstance(kind, int) else ()
    fields: dict[str, object] = {
        "name": "POST /v1/chat/completions",
        "kind": KIND_SERVER,
        "trace_id": TRACE_ID,
        "span_id": 0x00F067AA0BA902B7,
        "parent_span_id": 0,
        "parent_is_remote": False,
        "tracestate": None,
        "start_ns": 1_000,
        "end_ns": 2_000,
        "values": tuple(named.get(name) for name in names),
        "extra_attributes": {name: value for name, value in named.items() if name not in names} or None,
        "status_code": STATUS_UNSET,
        "status_description": None,
    }
    fields.update(changes)
    return tuple(fields.values())


def test_frames_round_trip_and_end_cleanly() -> None:
    batch = [wire_span(), wire_span(kind=KIND_CLIENT)]
    stream = io.BytesIO(frame({"service": "gateway"}) + frame(batch))
    assert read_frame(stream) == {"service": "gateway"}
    assert read_frame(stream) == batch
    assert read_frame(stream) is None


def test_a_cut_frame_is_the_end_not_a_message() -> None:
    data = frame([wire_span()])
    assert read_frame(io.BytesIO(data[:-3])) is None
    assert read_frame(io.BytesIO(data[:2])) is None


def test_an_oversized_length_is_refused_before_reading() -> None:
    with pytest.raises(ValueError, match="over the limit"):
        read_frame(io.BytesIO(b"\xff\xff\xff\xff"))


def test_a_root_server_span() -> None:
    span = SpanBuilder("edge").span(wire_span())
    assert span.name == "POST /v1/chat/completions"
    assert span.kind is SpanKind.SERVER
    assert span.context is not None
    assert (span.context.trace_id, span.context.span_id) == (TRACE_ID, 0x00F067AA0BA902B7)
    assert span.context.trace_flags.sampled
    assert span.parent is None
    assert (span.start_time, span.end_time) == (1_000, 2_000)
    assert dict(span.attributes or {}) == {"gateway.route": "alias", "gateway.attempts": 1}
    assert span.status.status_code is StatusCode.UNSET
    assert span.resource.attributes["service.name"] == "edge"
    assert span.resource.attributes["service.version"] == __version__
    assert span.instrumentation_scope is not None
    assert (span.instrumentation_scope.name, span.instrumentation_scope.version) == ("gateway", __version__)


def test_a_client_parent_is_remote_and_its_tracestate_is_kept() -> None:
    span = SpanBuilder("gateway").span(
        wire_span(parent_span_id=0xB7AD6B7169203331, parent_is_remote=True, tracestate="vendor=7,other=x")
    )
    assert span.parent is not None
    assert (span.parent.span_id, span.parent.is_remote) == (0xB7AD6B7169203331, True)
    assert span.context is not None
    assert span.context.trace_state.to_header() == "vendor=7,other=x"


def test_a_failed_attempt_span() -> None:
    span = SpanBuilder("gateway").span(
        wire_span(kind=KIND_CLIENT, parent_span_id=5, status_code=STATUS_ERROR, status_description="503")
    )
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None and span.parent.is_remote is False
    assert (span.status.status_code, span.status.description) == (StatusCode.ERROR, "503")


def test_the_sdk_attribute_limits_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2")
    span = SpanBuilder("gateway").span(wire_span(attributes={"a": "abcdefgh", "b": 1, "c": 2}))
    assert dict(span.attributes or {}) == {"b": 1, "c": 2}  # the oldest dropped, as the SDK drops
    assert span.dropped_attributes == 1
    span = SpanBuilder("gateway").span(wire_span(attributes={"a": "abcdefgh"}))
    assert dict(span.attributes or {}) == {"a": "abcd"}


def test_an_attribute_of_none_is_not_set() -> None:
    # The request path writes every attribute it knows, None for "not set" (observe/tracing_spans.py).
    span = SpanBuilder("gateway").span(wire_span(attributes={"error.type": None, "gateway.attempts": 1}))
    assert dict(span.attributes or {}) == {"gateway.attempts": 1}
    assert span.dropped_attributes == 0


@pytest.mark.parametrize(
    ("kind", "names"), [(KIND_SERVER, REQUEST_ATTRIBUTES), (KIND_CLIENT, ATTEMPT_ATTRIBUTES)]
)
def test_each_value_is_named_by_its_place_in_its_kinds_names(kind: int, names: tuple[str, ...]) -> None:
    values = tuple(f"value {place}" for place in range(len(names)))
    extra = {"gen_ai.input.messages": "[]"}
    span = SpanBuilder("gateway").span(wire_span(kind=kind, values=values, extra_attributes=extra))
    attributes = {name: value for name, value in zip(names, values, strict=True) if name not in (USAGE, URL)}
    assert dict(span.attributes or {}) == {**attributes, **extra}


def test_the_exporter_works_out_token_counts_server_and_names() -> None:
    """What the request path sends as it has it (the usage object, the provider's URL, no name)."""
    request = dict.fromkeys(REQUEST_ATTRIBUTES)
    request |= {"http.request.method": "POST", "url.path": "/v1/messages", USAGE: {"prompt_tokens": 7}}
    span = SpanBuilder("gateway").span(wire_span(name=None, values=tuple(request.values())))
    assert span.name == "POST /v1/messages"
    assert dict(span.attributes or {}) == {
        "http.request.method": "POST",
        "url.path": "/v1/messages",
        "gen_ai.usage.input_tokens": 7,  # no completion_tokens: unset, not 0
    }
    attempt = dict.fromkeys(ATTEMPT_ATTRIBUTES)
    attempt |= {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "deepseek-chat",
        URL: "https://api.deepseek.com/v1",
        USAGE: {"prompt_tokens": 7, "completion_tokens": True},  # a JSON true is no count
    }
    wire = wire_span(name=None, kind=KIND_CLIENT, values=tuple(attempt.values()), extra_attributes=None)
    span = SpanBuilder("gateway").span(wire)
    assert span.name == "chat deepseek-chat"
    assert dict(span.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "deepseek-chat",
        "server.address": "api.deepseek.com",
        "server.port": 443,
        "gen_ai.usage.input_tokens": 7,
    }
    attempt[URL] = "http://127.0.0.1:8080"
    span = SpanBuilder("gateway").span(wire_span(kind=KIND_CLIENT, values=tuple(attempt.values())))
    assert span.attributes is not None and span.attributes["server.port"] == 8080


def test_a_span_with_a_wrong_count_of_values_is_unreadable() -> None:
    with pytest.raises(ValueError, match="zip"):
        SpanBuilder("gateway").span(wire_span(values=("POST",)))


def test_the_console_exporter_prints_every_span(capsys: pytest.CaptureFixture[str]) -> None:
    settings = {"exporters": ["console"], "endpoint": None, "service": "gateway"}
    batches = frame(settings) + frame([wire_span()]) + frame([wire_span(name="chat m", kind=KIND_CLIENT)])
    export_all(io.BytesIO(batches))
    printed = capsys.readouterr().out
    assert '"name": "POST /v1/chat/completions"' in printed and '"name": "chat m"' in printed
    assert '"trace_id": "0x4bf92f3577b34da6a3ce929d0e0e4736"' in printed


def test_an_unreadable_batch_is_dropped_and_the_next_exported(capsys: pytest.CaptureFixture[str]) -> None:
    settings = {"exporters": ["console"], "endpoint": None, "service": "gateway"}
    unreadable = [[("too", "short")], [wire_span(values=())], [wire_span(kind=9)]]
    batches = b"".join(frame(batch) for batch in unreadable)
    export_all(io.BytesIO(frame(settings) + batches + frame([wire_span(name="after")])))
    assert '"name": "after"' in capsys.readouterr().out


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
