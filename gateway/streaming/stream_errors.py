"""An OpenAI-style error object inside a chat stream (`data: {"error": {...}}`), as an upstream error.

Some providers answer an overload or a bad request with status 200 and such an event (vLLM, OpenRouter,
proxies in front of them). As the first event, nothing has reached the client yet: it is an upstream
error like an HTTP one, retried and failed over by the route's policy (a 429 or 5xx) or answered with its
status (a 4xx). Later in a stream it ends the stream with the client's own error event.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import UpstreamProtocolError, UpstreamStatusError

_PROBE = 64  # bytes of the first event searched for `"error"`: the key comes first in every known shape


def first_event_error(payload: bytes, provider: str) -> UpstreamStatusError | None:
    """The error a stream's first event carries instead of a chunk, or None (one short search, no parse,
    for an ordinary chunk)."""
    if payload.find(b'"error"', 0, _PROBE) < 0:  # `find`, not `in`: see sse.py
        return None
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None  # a malformed event: the relay's own checks decide
    if not isinstance(data, dict) or data.get("choices"):
        return None
    if "error" in data:
        return stream_error(data["error"], provider)
    if data.get("object") == "error":  # vLLM's older shape: the error's fields at the top level
        return stream_error(data, provider)
    return None


def stream_error(error: Any, provider: str = "") -> UpstreamStatusError:
    """An upstream error from a stream's error object, with the status its type or code implies."""
    if not isinstance(error, dict):
        text = str(error)
        return UpstreamStatusError(502, provider=provider, message=text or "the upstream reported an error")
    message = str(error.get("message") or "the upstream reported an error in the stream")
    code, kind, param = error.get("code"), error.get("type"), error.get("param")
    status = _status(code, kind)
    body = orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}})
    return UpstreamStatusError(
        status,
        body,
        provider=provider,
        message=message,
        error_type=None if kind is None else str(kind),
        code=None if code is None else str(code),
        param=None if param is None else str(param),
        client_body=body,
    )


def _status(code: Any, kind: Any) -> int:
    """An HTTP status in the error's own `code` (vLLM: 400), else one its words name; else 502."""
    if isinstance(code, int) and 400 <= code <= 599:
        return code
    if isinstance(code, str) and code.isdigit() and 400 <= int(code) <= 599:
        return int(code)
    words = f"{code} {kind}".lower()
    if "rate_limit" in words or "too_many" in words:
        return 429
    if "overload" in words or "unavailable" in words or "capacity" in words:
        return 503
    if "invalid_request" in words or "badrequest" in words or "context_length" in words:
        return 400
    if "timeout" in words:
        return 504
    return 502


def parse_chat_chunk(data: bytes) -> dict[str, Any]:
    """One chat completion chunk of a stream whose events are translated: its JSON object; an error event
    is raised as the upstream's error (`stream_error`), anything but an object as a protocol error."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(f"the upstream sent a chunk that is not JSON: {data[:200]!r}") from None
    if not isinstance(chunk, dict):
        raise UpstreamProtocolError(f"a chunk that is not an object: {data[:200]!r}")
    error = chunk.get("error")
    if error is not None:
        raise stream_error(error)
    return chunk
