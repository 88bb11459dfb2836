"""An oracle of Anthropic Messages shapes: objects against the vendored JSON Schemas
(tests/data/anthropic/schemas.json, generated from anthropic-sdk-python's types; see its README), and
whole SSE streams against the order Anthropic writes them in.

    validate_message(body)             # a non-stream `Message`
    validate_error(body)               # `{"type": "error", "error": {...}}`
    validate_stream_event(data)        # one event's data (message_start ... message_stop, ping, error)
    message = validate_stream(raw)     # every event and their order; the message they add up to

Objects are closed: a property the SDK's type does not declare is an error. Schema problems raise
`jsonschema.ValidationError`; order problems `StreamOrderError`; a well-formed stream that ends with an
`event: error` raises `StreamEndedWithError` (with the error body and the message so far).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from tests.support.schema_document import SchemaDocument
from tests.support.sse_reader import parse_sse

SCHEMAS_PATH = Path(__file__).parent.parent / "data" / "anthropic" / "schemas.json"

# Which blocks each delta type may extend.
_DELTA_BLOCKS = {
    "text_delta": {"text"},
    "citations_delta": {"text"},
    "input_json_delta": {"tool_use", "server_tool_use"},
    "thinking_delta": {"thinking"},
    "signature_delta": {"thinking"},
}


class StreamOrderError(AssertionError):
    """The events are each well-formed, but not in an order Anthropic writes them in."""


class StreamEndedWithError(Exception):
    """The stream ended with an `event: error` (well-formed, in order up to there)."""

    def __init__(self, error: dict[str, Any], message: dict[str, Any] | None) -> None:
        super().__init__(f"stream ended with an error event: {error['error']}")
        self.error = error  # the event's data, `{"type": "error", "error": {...}}`
        self.message = message  # the message accumulated so far (None before message_start)


ANTHROPIC_SCHEMAS = SchemaDocument(SCHEMAS_PATH, "$defs")
validator = ANTHROPIC_SCHEMAS.validator
validate = ANTHROPIC_SCHEMAS.validate


@functools.cache
def _event_definitions() -> dict[str, str]:
    """Event `type` -> the definition of that event, read from the vendored union."""
    defs = ANTHROPIC_SCHEMAS.schemas
    names = [option["$ref"].rsplit("/", 1)[1] for option in defs["MessageStreamEvent"]["anyOf"]]
    table = {defs[name]["properties"]["type"]["const"]: name for name in names}
    return {**table, "ping": "PingEvent", "error": "ErrorResponse"}


def validate_message(obj: Any) -> None:
    validate("Message", obj)


def validate_error(obj: Any) -> None:
    validate("ErrorResponse", obj)


def validate_count_tokens(obj: Any) -> None:
    validate("MessageTokensCount", obj)


def validate_stream_event(obj: Any) -> None:
    """One event's data, by its `type` (so errors name the right event schema)."""
    event_type = obj.get("type") if isinstance(obj, dict) else None
    name = _event_definitions().get(event_type) if isinstance(event_type, str) else None
    if name is None:
        known = ", ".join(sorted(_event_definitions()))
        raise jsonschema.ValidationError(f"not a stream event type: {event_type!r} (known: {known})")
    validate(name, obj)


def validate_stream(sse: bytes | str) -> dict[str, Any]:
    """Check a whole Messages stream and return the message it adds up to (itself a valid `Message`).

    Order: message_start first; per block, content_block_start (index 0, 1, ...), deltas of a type that
    fits the block, content_block_stop, one block open at a time; then one message_delta and
    message_stop last. `ping` may come anywhere before message_stop. Every `event:` name equals its
    data's `type`.
    """
    text = sse.decode() if isinstance(sse, bytes) else sse
    events, _ = parse_sse(text)
    accumulator = _Accumulator()
    for position, event in enumerate(events, start=1):
        try:
            data = event.json()
        except ValueError as exc:
            raise StreamOrderError(f"event {position} ({event.event}): data is not JSON: {exc}") from None
        validate_stream_event(data)
        if event.event != data["type"]:
            raise StreamOrderError(f"event {position}: `event: {event.event}` carries a {data['type']!r}")
        accumulator.feed(position, data)
    return accumulator.finish()


class _Accumulator:
    """The state machine of a stream, building the final message as the SDK's accumulator does."""

    def __init__(self) -> None:
        self.message: dict[str, Any] | None = None
        self.open: int | None = None  # the index of the open block
        self.json_parts: dict[int, str] = {}
        self.delta_seen = False
        self.stopped = False

    def feed(self, position: int, data: dict[str, Any]) -> None:
        kind = data["type"]

        def fail(problem: str) -> StreamOrderError:
            return StreamOrderError(f"event {position} ({kind}): {problem}")

        if self.stopped:
            raise fail("after message_stop")
        if kind == "error":
            raise StreamEndedWithError(data, self.message)
        if kind == "ping":
            return
        if self.message is None:
            if kind != "message_start":
                raise fail("the first event must be message_start (pings aside)")
            self.message = copy.deepcopy(data["message"])
            if self.message["content"]:
                raise fail("message_start with content")
            return
        content: list[dict[str, Any]] = self.message["content"]
        if kind == "message_start":
            raise fail("a second message_start")
        if self.delta_seen and kind != "message_stop":
            raise fail("after message_delta (only ping and message_stop may follow)")
        if kind == "content_block_start":
            if self.open is not None:
                raise fail(f"block {self.open} is still open")
            if data["index"] != len(content):
                raise fail(f"index {data['index']}, expected {len(content)}")
            block = copy.deepcopy(data["content_block"])
            if block["type"] in ("tool_use", "server_tool_use"):
                if block.get("input") != {}:
                    raise fail("a tool block must start with input {}")
                self.json_parts[data["index"]] = ""
            content.append(block)
            self.open = data["index"]
        elif kind == "content_block_delta":
            self._delta(data, content, fail)
        elif kind == "content_block_stop":
            if data["index"] != self.open:
                raise fail(f"index {data['index']} is not the open block ({self.open})")
            if self.open in self.json_parts:
                partial = self.json_parts.pop(self.open)
                try:
                    content[self.open]["input"] = json.loads(partial) if partial else {}
                except ValueError as exc:
                    raise fail(f"the input_json_delta fragments are not JSON: {exc}") from None
            self.open = None
        elif kind == "message_delta":
            if self.open is not None:
                raise fail(f"block {self.open} is still open")
            self.message.update(data["delta"])
            usage = self.message["usage"]
            usage.update({key: value for key, value in data["usage"].items() if value is not None})
            self.delta_seen = True
        elif kind == "message_stop":
            if not self.delta_seen:
                raise fail("message_stop before message_delta")
            self.stopped = True

    def _delta(
        self, data: dict[str, Any], content: list[dict[str, Any]], fail: Callable[[str], StreamOrderError]
    ) -> None:
        if data["index"] != self.open:
            raise fail(f"index {data['index']} is not the open block ({self.open})")
        block = content[data["index"]]
        delta = data["delta"]
        if block["type"] not in _DELTA_BLOCKS.get(delta["type"], set()):
            raise fail(f"a {delta['type']} cannot extend a {block['type']} block")
        if delta["type"] == "text_delta":
            block["text"] += delta["text"]
        elif delta["type"] == "citations_delta":
            block["citations"] = [*(block.get("citations") or []), delta["citation"]]
        elif delta["type"] == "input_json_delta":
            self.json_parts[data["index"]] += delta["partial_json"]
        elif delta["type"] == "thinking_delta":
            block["thinking"] += delta["thinking"]
        elif delta["type"] == "signature_delta":
            block["signature"] = delta["signature"]

    def finish(self) -> dict[str, Any]:
        if self.message is None:
            raise StreamOrderError("the stream has no message_start")
        if not self.stopped:
            raise StreamOrderError("the stream ends before message_stop")
        if self.message.get("stop_reason") is None:
            raise StreamOrderError("the final message has no stop_reason")
        validate_message(self.message)
        return self.message
