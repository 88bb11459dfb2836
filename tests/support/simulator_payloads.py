"""OpenAI payloads the provider simulator answers with, and their SSE encoding.

Pure functions of the request and the `Behaviour`: no I/O, so the shapes can be checked against the
OpenAI schemas in isolation (`tests/support/test_simulator.py`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
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


def content_pieces(behaviour: Behaviour) -> list[str]:
    """The content deltas of an answer: `behaviour.text` split at word boundaries, else "word0 " ..."""
    if behaviour.text is not None:
        return re.findall(r"\s*\S+\s*", behaviour.text) or [behaviour.text]
    return [f"word{index} " for index in range(behaviour.tokens)]


def usage_for(request: Mapping[str, Any], pieces: list[str]) -> dict[str, int]:
    """Deterministic usage: one prompt token per word of the messages, one completion token per piece."""
    words = 0
    for message in request.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            words += len(content.split())
    prompt = max(words, 1)
    return {"prompt_tokens": prompt, "completion_tokens": len(pieces), "total_tokens": prompt + len(pieces)}


def completion(completion_id: str, model: str, behaviour: Behaviour, request: Mapping[str, Any]) -> dict:
    """A non-streaming `chat.completion` object."""
    pieces = content_pieces(behaviour)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_simulator",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(pieces), "refusal": None},
                "logprobs": None,
                "finish_reason": behaviour.finish_reason,
            }
        ],
        "usage": usage_for(request, pieces),
    }


def stream_chunks(
    completion_id: str, model: str, behaviour: Behaviour, request: Mapping[str, Any]
) -> list[dict | str]:
    """The events of a stream, in order: role, content deltas, finish, optional usage, then `[DONE]`.

    Like OpenAI, when usage is requested every chunk carries `"usage": null` and a last chunk with
    `"choices": []` carries the totals.
    """
    pieces = content_pieces(behaviour)
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

    events: list[dict | str] = [chunk({"role": "assistant", "content": ""}, None)]
    events.extend(chunk({"content": piece}, None) for piece in pieces)
    events.append(chunk({}, behaviour.finish_reason))
    if send_usage:
        final = chunk({}, None)
        final["choices"] = []
        final["usage"] = usage_for(request, pieces)
        events.append(final)
    if behaviour.done:
        events.append(DONE)
    return events


def error_body(status: int, message: str) -> dict:
    """An OpenAI error object for `status`."""
    error_type, code = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def model_list(models: tuple[str, ...]) -> dict:
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 1700000000, "owned_by": "simulator"} for name in models
        ],
    }


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def encode_event(event: dict | str, behaviour: Behaviour, sent_at: float) -> bytes:
    """One SSE event. Dicts are stamped with `x_sent_at` (when `behaviour.stamp`) and JSON-encoded."""
    if isinstance(event, dict):
        if behaviour.stamp:
            event = {**event, "x_sent_at": sent_at}
        # With `multiline_data`, indented JSON gives one `data:` line per line; SSE joins them with \n,
        # which JSON reads as whitespace.
        payload = json.dumps(event, indent=1 if behaviour.multiline_data else None, ensure_ascii=False)
    else:
        payload = event
    eol = "\r\n" if behaviour.crlf else "\n"
    lines = "".join(f"data: {line}{eol}" for line in payload.split("\n"))
    return (lines + eol).encode()


def encode_ping(behaviour: Behaviour) -> bytes:
    eol = "\r\n" if behaviour.crlf else "\n"
    return f": ping{eol}{eol}".encode()


def encode_malformed(behaviour: Behaviour) -> bytes:
    """A `data:` event whose payload is cut-off JSON, as a broken proxy or provider would send."""
    eol = "\r\n" if behaviour.crlf else "\n"
    return f'data: {{"id": "chatcmpl-broken", "choices": [{{"delta": {eol}{eol}'.encode()
