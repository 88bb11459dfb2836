"""`POST /v1/chat/completions` (and `/asgi`): parse, route, dispatch, respond. Thin by design."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from gateway.errors import InvalidRequest, ModelNotFound
from gateway.observe.request_id import accept_request_id
from gateway.providers.openai_openai import client_wants_usage
from gateway.resilience.dispatch import RequestContext
from gateway.streaming.asgi_streamer import AsgiStreamer
from gateway.streaming.starlette_streamer import StarletteStreamer

ASGI_OVERRIDE_FIELD = "x_use_asgi_streaming"
ASGI_OVERRIDE_HEADER = "x-use-asgi-streaming"


def parse_chat_body(raw: bytes) -> dict[str, Any]:
    """The request body as a dict, with the fields the gateway relies on checked."""
    if not raw:
        raise InvalidRequest("request body is empty: expected a JSON object", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
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


def use_asgi_streamer(body: dict[str, Any], header: str | None, route_mode: str) -> bool:
    """Body field beats header beats the route's `streaming:` setting."""
    override = body.get(ASGI_OVERRIDE_FIELD)
    if override is not None:
        return bool(override)
    if header is not None:
        value = header.strip().lower()
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no"):
            return False
        raise InvalidRequest(
            f"header {ASGI_OVERRIDE_HEADER} must be true or false",
            param=ASGI_OVERRIDE_HEADER,
            code="invalid_value",
        )
    return route_mode == "asgi"


def gateway_headers(ctx: RequestContext) -> dict[str, str]:
    return {
        "x-request-id": ctx.request_id,
        "x-gateway-provider": ctx.provider or "",
        "x-gateway-attempts": str(ctx.attempts),
    }


async def chat_completions(request: Request) -> ASGIApp:
    return await _handle(request, force_asgi=False)


async def chat_completions_asgi(request: Request) -> ASGIApp:
    return await _handle(request, force_asgi=True)


async def _handle(request: Request, *, force_asgi: bool) -> ASGIApp:
    request_id = accept_request_id(request.headers.get("x-request-id"))
    request.state.request_id = request_id
    body = parse_chat_body(await request.body())
    runtime = request.app.state.holder.current
    match = runtime.table.resolve(body["model"])
    if match is None:
        raise ModelNotFound(
            f"The model `{body['model']}` does not exist or you do not have access to it.", param="model"
        )
    stream = body.get("stream") is True
    ctx = RequestContext(
        request_id=request_id,
        match=match,
        body=body,
        stream=stream,
        client_wants_usage=client_wants_usage(body),
    )
    if not stream:
        reply = await runtime.dispatcher.complete(ctx)
        headers = gateway_headers(ctx)
        headers.update(reply.headers)
        return Response(
            reply.content, status_code=reply.status_code, media_type="application/json", headers=headers
        )

    asgi = force_asgi or use_asgi_streamer(
        body, request.headers.get(ASGI_OVERRIDE_HEADER), match.route.streaming
    )
    relay = await runtime.dispatcher.open_stream(ctx)
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
        (b"x-gateway-streamer", b"asgi" if asgi else b"starlette"),
    ]
    headers.extend((name.encode(), value.encode()) for name, value in gateway_headers(ctx).items())
    return AsgiStreamer(relay, headers) if asgi else StarletteStreamer(relay, headers)
