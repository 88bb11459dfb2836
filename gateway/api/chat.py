"""`POST /v1/chat/completions` (and `/asgi`): admit, then respond complete or as a stream. Thin by design.

Admitting (auth, parse, route, limits) is `api/admit.py` and the record of every exit `api/recording.py`,
shared with the other inbound APIs; what is OpenAI chat's own is here: its body checks and its two answers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from gateway.api.admit import admit, open_exchange
from gateway.api.recording import Exchange, gateway_headers, notify
from gateway.api.state import GatewayState, gateway_state
from gateway.errors import ClientClosedRequest, GatewayError, InvalidRequest
from gateway.resilience.dispatch import Dispatcher, RequestContext
from gateway.streaming.asgi_streamer import AsgiStreamer, DisconnectWatch
from gateway.streaming.relay import Relay
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
            return await respond_complete(runtime.dispatcher, exchange, ctx)
        return await respond_stream(request, state, runtime.dispatcher, exchange, ctx, force_asgi=force_asgi)
    except GatewayError as exc:
        await exchange.failed(exc)
        raise
    except Exception as exc:  # a bug: recorded and answered 500 like any error, its traceback only logged
        raise await exchange.crashed(exc) from None


async def respond_complete(dispatcher: Dispatcher, exchange: Exchange, ctx: RequestContext) -> Response:
    """The whole answer at once, with the gateway's and the key's limit headers."""
    reply = await dispatcher.complete(ctx)
    headers = gateway_headers(ctx)
    headers.update(reply.headers)
    if exchange.limit_headers:
        headers.update(exchange.limit_headers)
    if exchange.observers:
        await notify(exchange.observers, exchange.record(reply.status_code, usage=reply.usage()))
    return Response(reply.content, reply.status_code, headers, media_type="application/json")


async def respond_stream(
    request: Request,
    state: GatewayState,
    dispatcher: Dispatcher,
    exchange: Exchange,
    ctx: RequestContext,
    *,
    force_asgi: bool,
) -> ASGIApp:
    """An SSE answer, once its first event is in (errors before it are HTTP errors, after it SSE events)."""
    header = request.headers.get(ASGI_OVERRIDE_HEADER)
    asgi = force_asgi or use_asgi_streamer(ctx.body, header, ctx.route.streaming)
    if exchange.observers:
        ctx.on_stream_finish.append(exchange.stream_finished)
    # Watch for the client leaving from now on: waiting for the first event can take long (a
    # reasoning model, a retry's backoff), and a client gone meanwhile must cancel the upstream
    # request at once rather than when the first event finds nobody to send it to.
    watch = DisconnectWatch(request.receive)
    relay = await _open_stream(dispatcher, ctx, watch)
    if not asgi:  # Starlette's response watches `receive` itself
        await watch.close()
    for stream_observer in state.stream_observers:
        stream_observer.stream_opened()
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
        (b"x-gateway-streamer", b"asgi" if asgi else b"starlette"),
    ]
    headers.extend((name.encode(), value.encode()) for name, value in gateway_headers(ctx).items())
    if exchange.limit_headers:
        headers.extend((name.encode(), value.encode()) for name, value in exchange.limit_headers.items())
    return AsgiStreamer(relay, headers, watch=watch) if asgi else StarletteStreamer(relay, headers)


async def _open_stream(dispatcher: Dispatcher, ctx: RequestContext, watch: DisconnectWatch) -> Relay:
    """`dispatcher.open_stream` under `watch`; a client that leaves before the first event ends the
    attempt loop (the upstream request is closed by its cancellation) as `ClientClosedRequest`."""
    try:
        return await dispatcher.open_stream(ctx)
    except asyncio.CancelledError:
        ours = watch.fired and watch.task.uncancel() == 0
        await watch.close()
        if ours:
            raise ClientClosedRequest("the client closed the connection before the first event") from None
        raise
    except BaseException:
        await watch.close()
        raise
