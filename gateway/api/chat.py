"""`POST /v1/chat/completions` (and `/asgi`): admit, then respond complete or as a stream. Thin by design.

Admitting (auth, parse, route, limits) is `api/admit.py`, the answers `api/respond.py` and the record of
every exit `api/recording.py`, put together for every inbound API by `api/serve_request.py`; what is
OpenAI chat's own is here: its body checks.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp

from gateway.api.body import json_object
from gateway.api.serve_request import serve_request
from gateway.api.streamer_choice import ASGI_OVERRIDE_FIELD
from gateway.errors import InvalidRequest


def parse_chat_body(raw: bytes) -> dict[str, Any]:
    """The request body as a dict, with the fields the gateway relies on checked."""
    body = json_object(raw)
    model = body.get("model")
    if model is None:
        raise InvalidRequest(
            "you must provide a model parameter", param="model", code="missing_required_parameter"
        )
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be a non-empty string", param="model", code="invalid_type")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest(
            "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages", code="invalid_type")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream", code="invalid_type")
    override = body.get(ASGI_OVERRIDE_FIELD)
    if override is not None and not isinstance(override, bool):
        raise InvalidRequest(
            f"'{ASGI_OVERRIDE_FIELD}' must be a boolean", param=ASGI_OVERRIDE_FIELD, code="invalid_type"
        )
    return body


async def chat_completions(request: Request) -> ASGIApp:
    return await serve_request(request, "openai.chat", parse_chat_body)


async def chat_completions_asgi(request: Request) -> ASGIApp:
    return await serve_request(request, "openai.chat", parse_chat_body, force_asgi=True)
