"""Anthropic Messages payloads the provider simulator answers with, and their SSE encoding (`MESSAGES`).

Pure functions of the request and the `Behaviour`, like `tests.support.simulator_payloads` (whose
content pieces they share: the same deterministic words answer chat and messages requests), checked
against the vendored Anthropic shapes by `tests.support.anthropic_shapes`.

Events carry no `x_sent_at` stamp (Anthropic's event objects are closed, and the shape oracle holds the
simulator to them): `RecordedRequest.sent_at` keeps the write times instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.simulator_behaviour import Behaviour
from tests.support.simulator_payloads import (
    Dialect,
    Event,
    content_pieces,
    json_fragments,
    sse_frame,
    thinking_pieces,
)

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

# Chat finish reasons (Behaviour.finish_reason) in Messages words; others pass through unchanged.
SIGNATURE = "c2ltdWxhdG9yLXNpZ25hdHVyZQ=="  # of every thinking block (base64 "simulator-signature")

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str, error_type: str | None = None) -> dict[str, Any]:
    """Anthropic's error shape `{"type": "error", "error": {"type": ..., "message": ...}}`."""
    return {"type": "error", "error": {"type": error_type or error_type_for(status), "message": message}}


def _words(content: Any) -> int:
    """Words of a `content` (a string, or blocks whose text counts)."""
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(
            len(block["text"].split())
            for block in content
            if isinstance(block, Mapping) and isinstance(block.get("text"), str)
        )
    return 0


def input_tokens(request: Mapping[str, Any]) -> int:
    """The simulator's token estimate, as for chat: one per word of the system prompt and messages (min 1)."""
    words = _words(request.get("system"))
    for message in request.get("messages") or []:
        if isinstance(message, Mapping):
            words += _words(message.get("content"))
    return max(words, 1)


def count_tokens(request: Mapping[str, Any]) -> dict[str, Any]:
    """The answer of `POST /v1/messages/count_tokens`."""
    return {"input_tokens": input_tokens(request)}


class _Plan:
    """The blocks of one answer and its stop reason: thinking, text (capped at `max_tokens`), tool uses."""

    def __init__(self, number: int, behaviour: Behaviour, request: Mapping[str, Any]) -> None:
        self.number = number
        self.model = str(request.get("model", "sim-model"))
        self.input_tokens = input_tokens(request)
        self.thinking = thinking_pieces(behaviour)
        self.text = content_pieces(behaviour)
        self.tools = behaviour.tool_calls
        limit = request.get("max_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and len(self.text) > limit:
            self.text, self.tools = self.text[:limit], []
            self.stop_reason = "max_tokens"
        elif self.tools and behaviour.finish_reason == "stop":
            self.stop_reason = "tool_use"
        else:
            self.stop_reason = _STOP_REASONS.get(behaviour.finish_reason, behaviour.finish_reason)
        self.fragments = [json_fragments(call.get("input", {})) for call in self.tools]
        self.output_tokens = len(self.thinking) + len(self.text) + sum(map(len, self.fragments))

    def tool_id(self, index: int) -> str:
        return f"toolu_sim_{self.number}_{index}"

    def usage(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def message(self, content: list[dict[str, Any]], stop_reason: str | None) -> dict[str, Any]:
        return {
            "id": f"msg_sim_{self.number}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": self.usage(),
        }


def message(number: int, behaviour: Behaviour, request: Mapping[str, Any]) -> dict[str, Any]:
    """A non-streaming Anthropic `Message`."""
    plan = _Plan(number, behaviour, request)
    content: list[dict[str, Any]] = []
    if plan.thinking:
        content.append({"type": "thinking", "thinking": "".join(plan.thinking), "signature": SIGNATURE})
    if plan.text:
        content.append({"type": "text", "text": "".join(plan.text)})
    for index, call in enumerate(plan.tools):
        tool = {"type": "tool_use", "id": plan.tool_id(index), "name": call["name"]}
        content.append({**tool, "input": dict(call.get("input", {}))})
    return plan.message(content, plan.stop_reason)


def stream_events(number: int, behaviour: Behaviour, request: Mapping[str, Any]) -> list[Event]:
    """The events of a stream, exactly in Anthropic's order: message_start, ping, per block its start,
    deltas and stop, message_delta (stop reason, output tokens), message_stop."""
    plan = _Plan(number, behaviour, request)
    start = plan.message([], None)
    start["usage"] = {**start["usage"], "output_tokens": 1}
    events: list[Event] = [{"type": "message_start", "message": start}, {"type": "ping"}]

    blocks = 0

    def block(first: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal blocks
        index, blocks = blocks, blocks + 1
        events.append({"type": "content_block_start", "index": index, "content_block": first})
        events.extend({"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas)
        events.append({"type": "content_block_stop", "index": index})

    if plan.thinking:
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in plan.thinking]
        deltas.append({"type": "signature_delta", "signature": SIGNATURE})
        block({"type": "thinking", "thinking": "", "signature": ""}, deltas)
    if plan.text:
        block({"type": "text", "text": ""}, [{"type": "text_delta", "text": piece} for piece in plan.text])
    for index, (call, fragments) in enumerate(zip(plan.tools, plan.fragments, strict=True)):
        first = {"type": "tool_use", "id": plan.tool_id(index), "name": call["name"], "input": {}}
        block(first, [{"type": "input_json_delta", "partial_json": fragment} for fragment in fragments])
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": plan.output_tokens},
        }
    )
    events.append({"type": "message_stop"})
    return events


def encode_event(event: Event, behaviour: Behaviour, sent_at: float) -> bytes:
    """`event: <type>` then the JSON data, as Anthropic writes every event."""
    name = event["type"] if isinstance(event, dict) else None
    return sse_frame(event, behaviour, name)


def encode_ping(behaviour: Behaviour) -> bytes:
    return sse_frame({"type": "ping"}, behaviour, "ping")


def encode_malformed(behaviour: Behaviour) -> bytes:
    """A named event whose data is cut-off JSON."""
    eol = "\r\n" if behaviour.crlf else "\n"
    data = '{"type": "content_block_delta", "delta": '
    return f"event: content_block_delta{eol}data: {data}{eol}{eol}".encode()


def encode_error(behaviour: Behaviour, number: int, request: Mapping[str, Any], written: int) -> bytes:
    """Anthropic's mid-stream error: `event: error` with the error shape (default: overloaded)."""
    body = error_body(529, behaviour.error_message or "Overloaded", behaviour.error_type)
    return sse_frame(body, behaviour, "error")


MESSAGES = Dialect(
    completion=message,
    stream=stream_events,
    error_body=error_body,
    encode_event=encode_event,
    encode_ping=encode_ping,
    encode_malformed=encode_malformed,
    encode_error=encode_error,
)
