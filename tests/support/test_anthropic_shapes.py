"""The Anthropic shape oracle (tests.support.anthropic_shapes) on hand-written streams: a good one
passes, and each thing Anthropic would not send fails. Its run on the simulator's own output is in
test_simulator_anthropic.py."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.support.anthropic_shapes import (
    StreamOrderError,
    validate_message,
    validate_stream,
    validate_stream_event,
)


def good_events() -> list[dict]:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    return [
        {"type": "message_start", "message": message},
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 1},
        },
        {"type": "message_stop"},
    ]


def encode(events: list[dict], names: list[str] | None = None) -> bytes:
    names = names or [event["type"] for event in events]
    return "".join(
        f"event: {n}\ndata: {json.dumps(e)}\n\n" for n, e in zip(names, events, strict=True)
    ).encode()


def test_hand_written_good_stream_passes() -> None:
    message = validate_stream(encode(good_events()))
    assert message["content"] == [{"type": "text", "text": "hi"}]
    assert message["stop_reason"] == "end_turn"


def _without(index: int) -> list[dict]:
    events = good_events()
    del events[index]
    return events


def _swapped(first: int, second: int) -> list[dict]:
    events = good_events()
    events[first], events[second] = events[second], events[first]
    return events


def _changed(position: int, /, **fields: object) -> list[dict]:
    events = good_events()
    events[position] = {**events[position], **fields}
    return events


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        (_without(0), "first event must be message_start"),
        (_without(6), "before message_stop"),
        (_without(5), "message_stop before message_delta"),
        (_without(4), "still open"),
        (_swapped(5, 6), "message_stop before message_delta"),
        (_changed(3, index=1), "not the open block"),
        (_changed(2, index=1), "expected 0"),
        ([*good_events(), {"type": "ping"}], "after message_stop"),
        (_changed(3, delta={"type": "input_json_delta", "partial_json": "{"}), "cannot extend a text block"),
    ],
)
def test_bad_orders_fail(events: list[dict], problem: str) -> None:
    with pytest.raises(StreamOrderError, match=problem):
        validate_stream(encode(events))


@pytest.mark.parametrize(
    "events",
    [
        _changed(1, extra=1),  # an unknown property on a closed object
        _changed(3, delta={"type": "text_delta", "text": "hi", "x_sent_at": 1.0}),
        _changed(5, delta={"stop_reason": "stop"}),  # a chat finish reason
        _changed(2, content_block={"type": "text"}),  # text missing
        _changed(4, type="content_block_end"),
    ],
)
def test_bad_shapes_fail(events: list[dict]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_stream(encode(events, [e["type"] for e in good_events()]))


def test_event_names_must_match_the_data_type() -> None:
    names = [event["type"] for event in good_events()]
    names[3] = "content_block_start"
    with pytest.raises(StreamOrderError, match="carries a 'content_block_delta'"):
        validate_stream(encode(good_events(), names))


def test_tool_json_fragments_must_add_up_to_json() -> None:
    events = good_events()
    events[2] = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
    }
    events[3] = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "input_json_delta", "partial_json": '{"a": '},
    }
    with pytest.raises(StreamOrderError, match="not JSON"):
        validate_stream(encode(events))


def test_single_events_and_messages() -> None:
    validate_stream_event({"type": "ping"})
    validate_stream_event({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    with pytest.raises(jsonschema.ValidationError, match="not a stream event type"):
        validate_stream_event({"type": "chat.completion.chunk"})
    with pytest.raises(jsonschema.ValidationError):
        validate_message({**good_events()[0]["message"], "object": "chat.completion"})
