"""The two answers every inbound API gives once admitted: the whole answer at once, or an SSE stream
(once its first event is in: errors before it are HTTP errors, after it events of the client's API)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive

from gateway.api.recording import Exchange, cost_header, gateway_headers, raw_gateway_headers
from gateway.api.state import GatewayState
from gateway.api.streamer_choice import use_asgi_streamer
from gateway.errors import ClientClosedRequest
from gateway.resilience.dispatch import Dispatcher, RequestContext
from gateway.streaming.asgi_streamer import AsgiStreamer, DisconnectWatch
from gateway.streaming.late_watch import LateWatches
from gateway.streaming.relay import Relay
from gateway.streaming.starlette_streamer import StarletteStreamer

# What every SSE answer's head starts with; the streamer's name and the gateway's headers follow.
_SSE_HEAD = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)
_ASGI_STREAMER = (b"x-gateway-streamer", b"asgi")
_STARLETTE_STREAMER = (b"x-gateway-streamer", b"starlette")


async def respond_complete(
    dispatcher: Dispatcher,
    exchange: Exchange,
    ctx: RequestContext,
    receive: Receive,
    late: LateWatches,
) -> Response:
    """The whole answer at once, with the gateway's and the key's limit headers. A client that leaves
    while a slow answer is awaited (`late` starts watching after its delay) cancels the attempt loop, and
    so the upstream request: `ClientClosedRequest`, 499."""
    watch = DisconnectWatch(receive, started=False)
    late.add(watch)
    try:
        reply = await dispatcher.complete(ctx)
    except asyncio.CancelledError:
        late.discard(watch)
        ours = watch.fired and watch.task.uncancel() == 0
        await watch.close()
        if ours:
            raise ClientClosedRequest("the client closed the connection before the answer") from None
        exchange.cancelled()
        raise
    except BaseException:
        late.discard(watch)
        await watch.close()
        raise
    late.discard(watch)
    if watch.watching:
        await watch.close()
    else:
        watch.active = False  # never started: nothing to wait for (the common, quick case)
    headers = gateway_headers(ctx)
    headers.update(reply.headers)
    if exchange.limit_headers:
        headers.update(exchange.limit_headers)
    if exchange.observers or exchange.trace is not None or exchange.prices is not None or exchange.hold:
        record = exchange.record(reply.status_code, usage=reply.usage())
        cost = cost_header(record)
        if cost is not None:
            headers["x-gateway-cost"] = cost
        await exchange.finish(record, reply.content)
    response = Response(reply.content, reply.status_code, headers, media_type="application/json")
    if exchange.runtime is not None:
        response.raw_headers.append(exchange.runtime.version_header)
    return response


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
    asgi = force_asgi or use_asgi_streamer(ctx.body, request.scope["headers"], ctx.route.streaming)
    if exchange.observers or exchange.trace is not None or exchange.hold is not None:
        ctx.on_stream_finish.append(exchange.stream_finished)
        if exchange.prices is not None:  # a cut stream is charged by what it streamed
            ctx.keep_streamed, exchange.tokenizer = True, state.tokenizer
    # Watch for the client leaving from now on: waiting for the first event can take long (a
    # reasoning model, a retry's backoff), and a client gone meanwhile must cancel the upstream
    # request at once rather than when the first event finds nobody to send it to.
    watch = DisconnectWatch(request.receive)
    try:
        relay = await _open_stream(dispatcher, ctx, watch)
    except asyncio.CancelledError:
        exchange.cancelled()  # not the client leaving (that is ClientClosedRequest): shutdown
        raise
    if not asgi:  # Starlette's response watches `receive` itself
        await watch.close()
    for stream_observer in state.stream_observers:
        stream_observer.stream_opened()
    headers = [*_SSE_HEAD, _ASGI_STREAMER if asgi else _STARLETTE_STREAMER, *raw_gateway_headers(ctx)]
    if exchange.limit_headers:
        headers.extend((name.encode(), value.encode()) for name, value in exchange.limit_headers.items())
    if exchange.runtime is not None:
        headers.append(exchange.runtime.version_header)
    return AsgiStreamer(relay, headers, watch=watch) if asgi else StarletteStreamer(relay, headers)


async def _open_stream(dispatcher: Dispatcher, ctx: RequestContext, watch: DisconnectWatch) -> Relay:
    """`dispatcher.open_stream` under `watch`; a client that leaves before the first event ends the
    attempt loop (the upstream request is closed by its cancellation) as `ClientClosedRequest`."""
    try:
        return await dispatcher.open_stream(ctx)
    except BaseException as exc:
        # No stream: its finish callbacks never run. They hold the exchange, which holds `ctx`: let go.
        ctx.on_stream_finish.clear()
        ours = isinstance(exc, asyncio.CancelledError) and watch.fired and watch.task.uncancel() == 0
        await watch.close()
        if ours:
            raise ClientClosedRequest("the client closed the connection before the first event") from None
        raise
