"""`POST /v1/chat/completions` (and `/asgi`): parse, route, dispatch, respond. Thin by design."""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from gateway.access.controller import AccessController
from gateway.errors import ClientClosedRequest, GatewayError, InvalidRequest, ModelNotFound
from gateway.observe.request_id import accept_request_id, bind_request_id
from gateway.records import RequestObserver, RequestRecord, StreamObserver
from gateway.resilience.dispatch import Dispatcher, RequestContext
from gateway.streaming.asgi_streamer import AsgiStreamer, DisconnectWatch
from gateway.streaming.relay import StreamRelay, StreamStats
from gateway.streaming.starlette_streamer import StarletteStreamer

logger = logging.getLogger("gateway.api")

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
    """x-request-id, x-gateway-attempts and (once an attempt was made) x-gateway-provider: the last one
    tried, i.e. the one that answered."""
    headers = {"x-request-id": ctx.request_id, "x-gateway-attempts": str(ctx.attempts)}
    if ctx.provider is not None:
        headers["x-gateway-provider"] = ctx.provider
    return headers


async def chat_completions(request: Request) -> ASGIApp:
    return await _handle(request, force_asgi=False)


async def chat_completions_asgi(request: Request) -> ASGIApp:
    return await _handle(request, force_asgi=True)


async def _handle(request: Request, *, force_asgi: bool) -> ASGIApp:
    started = time.perf_counter()
    request_id = accept_request_id(request.headers.get("x-request-id"))
    request.state.request_id = request_id
    bind_request_id(request_id)  # every log line of this request carries it (observe/logging.py)
    observers: list[RequestObserver] = request.app.state.observers
    access: AccessController | None = request.app.state.access  # None: no keys enforced
    ctx: RequestContext | None = None
    model = ""
    limit_headers: dict[str, str] | None = None
    try:
        key = access.authenticate(request.headers) if access is not None else None
        body = parse_chat_body(await request.body())
        model = body["model"]
        runtime = request.app.state.holder.current
        match = runtime.table.resolve(model)
        if match is None:
            raise ModelNotFound(
                f"The model `{model}` does not exist or you do not have access to it.", param="model"
            )
        stream = body.get("stream") is True
        ctx = RequestContext(
            request_id=request_id,
            match=match,
            body=body,
            stream=stream,
            started=started,
        )
        if access is not None and key is not None:
            ctx.key_name = key.name
            limit_headers = await access.admit(key, match)
        if not stream:
            reply = await runtime.dispatcher.complete(ctx)
            headers = gateway_headers(ctx)
            headers.update(reply.headers)
            if limit_headers:
                headers.update(limit_headers)
            if observers:
                await _notify(observers, _record(ctx, model, reply.status_code, usage=reply.usage()))
            return Response(reply.content, reply.status_code, headers, media_type="application/json")

        header = request.headers.get(ASGI_OVERRIDE_HEADER)
        asgi = force_asgi or use_asgi_streamer(body, header, match.route.streaming)
        if observers:
            ctx.on_stream_finish.append(partial(_stream_finished, observers, ctx, model))
        # Watch for the client leaving from now on: waiting for the first event can take long (a
        # reasoning model, a retry's backoff), and a client gone meanwhile must cancel the upstream
        # request at once rather than when the first event finds nobody to send it to.
        watch = DisconnectWatch(request.receive)
        relay = await _open_stream(runtime.dispatcher, ctx, watch)
        if not asgi:  # Starlette's response watches `receive` itself
            await watch.close()
    except GatewayError as exc:
        exc.headers.update(gateway_headers(ctx) if ctx is not None else {"x-gateway-attempts": "0"})
        if observers:
            record = _record(ctx, model, exc.status_code, error=exc, request_id=request_id, started=started)
            await _notify(observers, record)
        raise
    stream_observers: list[StreamObserver] = request.app.state.stream_observers
    for stream_observer in stream_observers:
        stream_observer.stream_opened()
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
        (b"x-gateway-streamer", b"asgi" if asgi else b"starlette"),
    ]
    headers.extend((name.encode(), value.encode()) for name, value in gateway_headers(ctx).items())
    if limit_headers:
        headers.extend((name.encode(), value.encode()) for name, value in limit_headers.items())
    return AsgiStreamer(relay, headers, watch=watch) if asgi else StarletteStreamer(relay, headers)


async def _open_stream(dispatcher: Dispatcher, ctx: RequestContext, watch: DisconnectWatch) -> StreamRelay:
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


def read_usage(content: bytes) -> dict[str, Any] | None:
    """The `usage` block of a non-streaming answer (parsed only when someone observes requests)."""
    if b'"usage"' not in content:
        return None
    try:
        usage = orjson.loads(content).get("usage")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return usage if isinstance(usage, dict) else None


def _record(
    ctx: RequestContext | None,
    model: str,
    status_code: int,
    *,
    usage: dict[str, Any] | None = None,
    error: GatewayError | None = None,
    request_id: str = "",
    started: float | None = None,
) -> RequestRecord:
    begun = ctx.started if ctx else started
    return RequestRecord(
        request_id=ctx.request_id if ctx else request_id,
        model=model,
        route=ctx.route.name if ctx else None,
        provider=ctx.provider if ctx else None,
        upstream_model=ctx.upstream_model if ctx else None,
        stream=ctx.stream if ctx else False,
        status_code=status_code,
        attempts=ctx.attempts if ctx else 0,
        duration=0.0 if begun is None else time.perf_counter() - begun,
        retries=ctx.retries if ctx else 0,
        failovers=ctx.failovers if ctx else 0,
        key_name=ctx.key_name if ctx else None,
        usage=usage,
        error_code=error.code if error else None,
    )


async def _stream_finished(
    observers: list[RequestObserver], ctx: RequestContext, model: str, stats: StreamStats
) -> None:
    record = _record(ctx, model, 200, usage=stats.usage)
    record.time_to_first_chunk = stats.first_chunk - stats.started if stats.first_chunk else None
    record.chunks = stats.chunks
    record.stream_status = stats.status
    record.chunk_interval = stats.average_interval
    record.max_chunk_interval = stats.max_interval if stats.chunks > 1 else None
    await _notify(observers, record)


async def _notify(observers: list[RequestObserver], record: RequestRecord) -> None:
    for observer in observers:
        try:
            await observer.request_finished(record)
        except Exception:  # an observer must never break the request it observes
            logger.exception("request observer %r failed", observer)
