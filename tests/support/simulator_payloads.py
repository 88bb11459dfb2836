"""OpenAI payloads the provider simulator answers with, and their SSE encoding; the `Dialect` seam.

Pure functions of the request and the `Behaviour`: no I/O, so the shapes can be checked against the
OpenAI schemas in isolation (`tests/support/test_simulator.py`). A `Dialect` bundles what differs
between the APIs the simulator speaks (bodies, error shapes, SSE framing): `CHAT` here, `MESSAGES` in
`tests.support.simulator_anthropic_payloads`, `RESPONSES` in `tests.support.simulator_responses_payloads`;
`tests.support.simulator_answers` plays any of them.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from tests.support.simulator_behaviour import Behaviour

DONE = "[DONE]"

# OpenAI's error `type` and `code` for the statuses tests inject most.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", "service_unavailable"),
    504: ("server_error", None),
}


Event = dict[str, Any] | str  # a JSON payload, or a raw `data:` string such as [DONE]


@dataclass(frozen=True)
class Dialect:
    """What one API's answers look like; `number` is the request's `RecordedRequest.number`."""

    completion: Callable[[int, Behaviour, Mapping[str, Any]], dict[str, Any]]  # the non-stream body
    stream: Callable[[int, Behaviour, Mapping[str, Any]], list[Event]]  # the stream's events, in order
    error_body: Callable[[int, str, str | None], dict[str, Any]]  # (status, message, type override)
    encode_event: Callable[[Event, Behaviour, float], bytes]  # (event, behaviour, time.time() of write)
    encode_ping: Callable[[Behaviour], bytes]  # what `ping_every` writes
    encode_malformed: Callable[[Behaviour], bytes]  # what `malformed_after` writes
    # what `error_after` writes before the stream ends: (behaviour, number, request, events written)
    encode_error: Callable[[Behaviour, int, Mapping[str, Any], int], bytes]


def split_words(text: str) -> list[str]:
    """`text` in pieces at word boundaries, each keeping its surrounding spaces."""
    return re.findall(r"\s*\S+\s*", text) or [text]


def content_pieces(behaviour: Behaviour) -> list[str]:
    """The content deltas of an answer: `behaviour.text` split at word boundaries, else "word0 " ..."""
    if behaviour.text is not None:
        return split_words(behaviour.text)
    return [f"word{index} " for index in range(behaviour.tokens)]


def thinking_pieces(behaviour: Behaviour) -> list[str]:
    return split_words(behaviour.thinking) if behaviour.thinking is not None else []


def json_fragments(value: Mapping[str, Any], pieces: int = 3) -> list[str]:
    """`value` as JSON cut into (up to) `pieces` fragments, as providers stream tool arguments."""
    text = json.dumps(value)
    size = max(1, math.ceil(len(text) / pieces))
    return [text[start : start + size] for start in range(0, len(text), size)]


def usage_for(request: Mapping[str, Any], pieces: list[str]) -> dict[str, int]:
    """Deterministic usage: one prompt token per word of the messages, one completion token per piece."""
    words = 0
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            words += len(content.split())
    prompt = max(words, 1)
    return {"prompt_tokens": prompt, "completion_tokens": len(pieces), "total_tokens": prompt + len(pieces)}


def _finish_reason(behaviour: Behaviour) -> str:
    if behaviour.tool_calls and behaviour.finish_reason == "stop":
        return "tool_calls"
    return behaviour.finish_reason


def _output_pieces(behaviour: Behaviour) -> list[str]:
    """Everything the answer generates, for its usage: thinking, content and tool argument fragments."""
    fragments = [f for call in behaviour.tool_calls for f in json_fragments(call.get("input", {}))]
    return thinking_pieces(behaviour) + content_pieces(behaviour) + fragments


def completion(number: int, behaviour: Behaviour, request: Mapping[str, Any]) -> dict:
    """A non-streaming `chat.completion` object."""
    pieces = content_pieces(behaviour)
    calls = behaviour.tool_calls
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(pieces) if pieces or not calls else None,
        "refusal": None,
    }
    if behaviour.thinking is not None:
        message["reasoning_content"] = behaviour.thinking
    if calls:
        message["tool_calls"] = [
            {
                "id": f"call_sim_{number}_{index}",
                "type": "function",
                "function": {"name": call["name"], "arguments": json.dumps(call.get("input", {}))},
            }
            for index, call in enumerate(calls)
        ]
    return {
        "id": f"chatcmpl-sim-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(request.get("model", "sim-model")),
        "system_fingerprint": "fp_simulator",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish_reason(behaviour)}
        ],
        "usage": usage_for(request, _output_pieces(behaviour)),
    }


def stream_chunks(number: int, behaviour: Behaviour, request: Mapping[str, Any]) -> list[Event]:
    """The events of a stream, in order: role, reasoning and content deltas, tool calls (a head with id
    and name, then argument fragments), finish, optional usage, then `[DONE]`.

    Like OpenAI, when usage is requested every chunk carries `"usage": null` and a last chunk with
    `"choices": []` carries the totals.
    """
    completion_id, model = f"chatcmpl-sim-{number}", str(request.get("model", "sim-model"))
    pieces = content_pieces(behaviour)
    calls = behaviour.tool_calls
    options = request.get("stream_options")
    wants_usage = isinstance(options, Mapping) and options.get("include_usage") is True
    send_usage = wants_usage if behaviour.usage is None else behaviour.usage
    created = int(time.time())

    def chunk(delta: dict, finish_reason: str | None) -> dict:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_simulator",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if send_usage:
            body["usage"] = None
        return body

    events: list[Event] = [chunk({"role": "assistant", "content": "" if pieces or not calls else None}, None)]
    events.extend(chunk({"reasoning_content": piece}, None) for piece in thinking_pieces(behaviour))
    events.extend(chunk({"content": piece}, None) for piece in pieces)
    for index, call in enumerate(calls):
        function = {"name": call["name"], "arguments": ""}
        head = {"index": index, "id": f"call_sim_{number}_{index}", "type": "function", "function": function}
        events.append(chunk({"tool_calls": [head]}, None))
        events.extend(
            chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}, None)
            for fragment in json_fragments(call.get("input", {}))
        )
    events.append(chunk({}, _finish_reason(behaviour)))
    if send_usage:
        final = chunk({}, None)
        final["choices"] = []
        final["usage"] = usage_for(request, _output_pieces(behaviour))
        events.append(final)
    if behaviour.done:
        events.append(DONE)
    return events


def error_body(status: int, message: str, error_type: str | None = None) -> dict:
    """An OpenAI error object for `status` (its `type` replaced by `error_type` when given)."""
    default_type, code = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": error_type or default_type, "param": None, "code": code}}


def model_list(models: tuple[str, ...]) -> dict:
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 1700000000, "owned_by": "simulator"} for name in models
        ],
    }


def reason_phrase(status: int) -> str:
    if status == 529:
        return "Overloaded"  # Anthropic's; not in the IANA registry
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def sse_frame(event: Event, behaviour: Behaviour, name: str | None = None) -> bytes:
    """One SSE event (`event: name` first when given), with the behaviour's line endings and data lines."""
    if isinstance(event, dict):
        # With `multiline_data`, indented JSON gives one `data:` line per line; SSE joins them with \n,
        # which JSON reads as whitespace.
        payload = json.dumps(event, indent=1 if behaviour.multiline_data else None, ensure_ascii=False)
    else:
        payload = event
    eol = "\r\n" if behaviour.crlf else "\n"
    lines = f"event: {name}{eol}" if name is not None else ""
    lines += "".join(f"data: {line}{eol}" for line in payload.split("\n"))
    return (lines + eol).encode()


def encode_event(event: Event, behaviour: Behaviour, sent_at: float) -> bytes:
    """One chat SSE event. Dicts are stamped with `x_sent_at` (when `behaviour.stamp`) and JSON-encoded."""
    if isinstance(event, dict) and behaviour.stamp:
        event = {**event, "x_sent_at": sent_at}
    return sse_frame(event, behaviour)


def encode_ping(behaviour: Behaviour) -> bytes:
    eol = "\r\n" if behaviour.crlf else "\n"
    return f": ping{eol}{eol}".encode()


def encode_malformed(behaviour: Behaviour) -> bytes:
    """A `data:` event whose payload is cut-off JSON, as a broken proxy or provider would send."""
    eol = "\r\n" if behaviour.crlf else "\n"
    return f'data: {{"id": "chatcmpl-broken", "choices": [{{"delta": {eol}{eol}'.encode()


def encode_error(behaviour: Behaviour, number: int, request: Mapping[str, Any], written: int) -> bytes:
    """A mid-stream error as OpenAI-compatible servers send it: `data: {"error": {...}}`."""
    message = behaviour.error_message or "simulated error event from the provider simulator"
    return sse_frame(error_body(500, message, behaviour.error_type), behaviour)


CHAT = Dialect(
    completion=completion,
    stream=stream_chunks,
    error_body=error_body,
    encode_event=encode_event,
    encode_ping=encode_ping,
    encode_malformed=encode_malformed,
    encode_error=encode_error,
)
