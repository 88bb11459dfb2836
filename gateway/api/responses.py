"""`POST /v1/responses`: OpenAI's Responses API, stateless. Passed through to a target that speaks it,
translated to chat for the rest (`translate/responses_chat*.py`); `store: true` and `previous_response_id`
are refused there, since the gateway keeps no responses. Errors in OpenAI's shape.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp

from gateway.api.body import json_object
from gateway.api.serve_request import serve_request
from gateway.errors import InvalidRequest

# Client headers that select API behaviour, passed on to a native Responses target only.
FORWARDED_HEADERS = ("openai-beta", "openai-organization", "openai-project")


def parse_responses_body(raw: bytes) -> dict[str, Any]:
    body = json_object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest(
            "'model' must be a non-empty string", param="model", code="missing_required_parameter"
        )
    if "input" not in body:
        raise InvalidRequest(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    if not isinstance(body["input"], str | list):
        raise InvalidRequest(
            "'input' must be a string or an array of input items", param="input", code="invalid_type"
        )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream", code="invalid_type")
    return body


async def responses(request: Request) -> ASGIApp:
    headers = request.headers
    forwarded = tuple((name, value) for name in FORWARDED_HEADERS if (value := headers.get(name)) is not None)
    return await serve_request(request, "openai.responses", parse_responses_body, forwarded)
