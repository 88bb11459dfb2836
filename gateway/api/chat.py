"""`POST /v1/chat/completions` (and `/asgi`): admit, then respond complete or as a stream. Thin by design.

Admitting (auth, parse, route, limits) is `api/admit.py` and the record of every exit `api/recording.py`,
shared with the other inbound APIs, and so are the two answers (`api/respond.py`); what is OpenAI chat's
own is here: its body checks.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp

from gateway.api.admit import admit, open_exchange
from gateway.api.body import json_object
from gateway.api.respond import respond_complete, respond_stream
from gateway.api.state import gateway_state
from gateway.api.streamer_choice import ASGI_OVERRIDE_FIELD
from gateway.errors import GatewayError, InvalidRequest


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
    return await _handle(request, force_asgi=False)


async def chat_completions_asgi(request: Request) -> ASGIApp:
    return await _handle(request, force_asgi=True)


async def _handle(request: Request, *, force_asgi: bool) -> ASGIApp:
    state = gateway_state(request)
    exchange = open_exchange(request, state)
    try:
        runtime = await admit(request, state, exchange, "openai.chat", parse_chat_body)
        ctx = exchange.ctx
        assert ctx is not None  # admit routed the request
        if not ctx.stream:
            return await respond_complete(
                runtime.dispatcher, exchange, ctx, request.receive, state.late_watches
            )
        return await respond_stream(request, state, runtime.dispatcher, exchange, ctx, force_asgi=force_asgi)
    except GatewayError as exc:
        await exchange.failed(exc)
        raise
    except Exception as exc:  # a bug: recorded and answered 500 like any error, its traceback only logged
        raise await exchange.crashed(exc) from None
