"""`POST /v1/embeddings`: routed like chat (keys, allowlists, limits, retry and failover), answered whole.

A route serves embeddings when its targets do (`apis:` of the provider: Ollama and the mock by default,
`embeddings: true` for an OpenAI-compatible one); the request goes through unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp

from gateway.api.body import json_object
from gateway.api.serve_request import serve_request
from gateway.errors import InvalidRequest


def parse_embeddings_body(raw: bytes) -> dict[str, Any]:
    """The body as a dict, with what OpenAI requires checked in its words."""
    body = json_object(raw)
    model = body.get("model")
    if model is None:
        raise InvalidRequest(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be a non-empty string", param="model", code="invalid_type")
    if "input" not in body:
        raise InvalidRequest(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    text = body["input"]
    if not (isinstance(text, str) or (isinstance(text, list) and text)):
        raise InvalidRequest(
            "'input' must be a string or a non-empty array of strings or token arrays",
            param="input",
            code="invalid_type",
        )
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ("float", "base64"):
        raise InvalidRequest(
            f"Invalid value for 'encoding_format': {encoding!r}; supported values are 'float' and 'base64'",
            param="encoding_format",
            code="invalid_value",
        )
    if body.get("stream") is not None:
        raise InvalidRequest(
            "embeddings do not stream: remove 'stream'", param="stream", code="invalid_value"
        )
    return body


async def embeddings(request: Request) -> ASGIApp:
    return await serve_request(request, "openai.embeddings", parse_embeddings_body)  # never a stream
