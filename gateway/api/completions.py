"""`POST /v1/completions`, OpenAI's legacy text completions: passed through to targets that declare them
(`apis: {completions: true}`), JSON or SSE; a route whose targets do not serve them answers 404."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp

from gateway.api.body import json_object
from gateway.api.serve_request import serve_request
from gateway.errors import InvalidRequest


def parse_completions_body(raw: bytes) -> dict[str, Any]:
    body = json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    if "prompt" not in body:
        raise InvalidRequest(
            "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
        )
    prompt = body["prompt"]
    if not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt)):
        raise InvalidRequest(
            "'prompt' must be a string or a non-empty array of strings or token arrays",
            param="prompt",
            code="invalid_type",
        )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream", code="invalid_type")
    return body


async def completions(request: Request) -> ASGIApp:
    return await serve_request(request, "openai.completions", parse_completions_body)
