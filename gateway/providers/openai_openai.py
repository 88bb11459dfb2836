"""Translator from an OpenAI chat request to an OpenAI-compatible upstream (DeepSeek, 01.AI, Ollama's /v1).

Pure and per attempt: it starts from the client's parsed body, never mutates it, and returns the bytes to
send. Only the model name changes, plus `stream_options.include_usage` when the gateway wants usage.
"""

from __future__ import annotations

from typing import Any

import orjson

# Body fields meant for the gateway itself; they never reach a provider.
GATEWAY_FIELDS = ("x_use_asgi_streaming",)


def translate_request(body: dict[str, Any], upstream_model: str, *, request_usage: bool) -> bytes:
    """The upstream request body for one attempt."""
    out = dict(body)
    out["model"] = upstream_model
    for name in GATEWAY_FIELDS:
        out.pop(name, None)
    if request_usage and out.get("stream"):
        options = out.get("stream_options")
        out["stream_options"] = (
            {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
        )
    return orjson.dumps(out)


def client_wants_usage(body: dict[str, Any]) -> bool:
    """Did the client itself ask for the usage chunk at the end of a stream?"""
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))
