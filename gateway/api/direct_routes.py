"""The inbound APIs' endpoints called straight from the ASGI entry, past Starlette's router and exception
middlewares.

A `POST` to an inbound API's exact path (`/v1/chat/completions`, `/v1/messages`, ...) is the gateway's hot
path. Through FastAPI's stack it crosses nine layers before its endpoint (error, telemetry and body-limit
middlewares, the exception middleware, an exit stack, the router matching every route in turn, the
route's own exception wrapper), and two of them wrap `send`, so every SSE chunk paid for them too. Here a
dict lookup finds the endpoint, and its errors are rendered by the same `error_response` the registered
exception handlers use, so answers are byte for byte the same. Every other request (other methods,
paths, `/health`, `/admin/*`, lifespan) goes through FastAPI as before: 404, 405 and the rest unchanged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.errors import error_response
from gateway.errors import GatewayError

logger = logging.getLogger("gateway.api")

# An endpoint answers with any ASGI app: a `Response`, or one of the streamers.
DirectEndpoint = Callable[[Request], Awaitable[ASGIApp]]


class DirectRoutes:
    """ASGI app: `POST` to a path of `endpoints` calls its endpoint; everything else goes to `fallback`."""

    __slots__ = ("endpoints", "fallback")

    def __init__(self, fallback: ASGIApp, endpoints: Mapping[str, DirectEndpoint]) -> None:
        self.fallback = fallback
        self.endpoints = dict(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                await call_endpoint(endpoint, scope, receive, send)
                return
        await self.fallback(scope, receive, send)


async def call_endpoint(endpoint: DirectEndpoint, scope: Scope, receive: Receive, send: Send) -> None:
    """What Starlette's `request_response` does for an endpoint, with the gateway's error handlers inline:
    a `GatewayError` becomes its API's error answer, anything else a logged 500 in the same shape."""
    request = Request(scope, receive, send)
    try:
        answer = await endpoint(request)
    except GatewayError as exc:
        # Its traceback holds the endpoint's frames, which hold the exchange, which holds the error: a
        # reference cycle per failed request for the collector to find. Rendered now, it is not needed.
        exc.__traceback__ = None
        answer = error_response(exc, _request_id(request), path=scope["path"])
    except Exception as exc:
        answer = unexpected_error(request)
        exc.__traceback__ = None  # logged with it above; the same cycle otherwise
    try:
        await answer(scope, receive, send)
    except GatewayError as exc:  # raised while answering, e.g. a chunked body over the limit
        await answer_late(
            exc, error_response(exc, _request_id(request), path=scope["path"]), scope, receive, send
        )


def unexpected_error(request: Request) -> ASGIApp:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(GatewayError("internal gateway error"), _request_id(request), path=request.url.path)


async def answer_late(exc: Exception, answer: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Send `answer` if no answer had begun; else the server must see `exc` and close the connection (a
    second head is refused with RuntimeError), as Starlette's exception wrapper does."""
    sent = False
    with contextlib.suppress(RuntimeError):
        await answer(scope, receive, send)
        sent = True
    if not sent:
        raise exc


def _request_id(request: Request) -> str | None:
    request_id: str | None = getattr(request.state, "request_id", None)
    return request_id
