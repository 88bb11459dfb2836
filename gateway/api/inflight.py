"""The pure ASGI middleware that counts every HTTP request in the `InflightTracker` (runtime/inflight.py),
streams until their last byte, so a reload closes retired providers only once they are idle; and in the
shutdown's `Drain` (runtime/drain.py), so the shutdown knows what is in flight and can end it.

While draining, every answer but `/health`'s says `connection: close`, so keep-alive clients move to
another instance while a load balancer polling `/health` keeps its connection. A request the drain cut
before its answer began gets a 503 in its API's error shape.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.config_version import served_version_header
from gateway.api.errors import error_response
from gateway.api.state import app_state
from gateway.errors import ShuttingDown
from gateway.runtime.drain import CUT_MESSAGE, Drain, InflightRequest
from gateway.runtime.inflight import InflightTracker
from gateway.streaming.relay_protocol import STREAM_SLOT

HEALTH_PATH = "/health"
# The API names the last drain line counts cut requests by.
API_NAMES = {
    "/v1/chat/completions": "chat",
    "/v1/chat/completions/asgi": "chat",
    "/v1/messages": "messages",
    "/v1/responses": "responses",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
}


class InflightMiddleware:
    """Pure ASGI middleware: count each HTTP request (streams until their end) in the tracker and the
    drain; answer a request the drain cut with a 503."""

    def __init__(self, app: ASGIApp, tracker: InflightTracker, drain: Drain) -> None:
        self.app = app
        self.tracker = tracker
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        generation = self.tracker.enter()
        try:
            path = scope["path"]
            if path == HEALTH_PATH:  # answers at once; the drain neither waits for it nor counts it
                await self.app(scope, receive, send)
                return
            drain = self.drain
            entry = drain.enter(API_NAMES.get(path, "other"))
            scope[STREAM_SLOT] = entry
            try:
                await self.app(scope, receive, closing(send) if drain.draining else send)
            except asyncio.CancelledError:
                if not cut_alone(entry):
                    raise
                await answer_cut(scope, receive, send)
            finally:
                drain.leave(entry)
        finally:
            self.tracker.leave(generation)


def cut_alone(entry: InflightRequest) -> bool:
    """Whether the cancellation being handled is the drain's cut of a request that was not streaming yet
    (then it is taken back)."""
    task = asyncio.current_task()
    return entry.cut and entry.stream is None and task is not None and task.uncancel() == 0


async def answer_cut(scope: Scope, receive: Receive, send: Send) -> None:
    """A 503 in the API's error shape, unless the answer had begun (the server then closes the
    connection: the client sees a cut-off body, never a complete-looking one)."""
    app = scope.get("app")
    version = served_version_header(app_state(app)) if app is not None else None
    response = error_response(ShuttingDown(CUT_MESSAGE), path=scope["path"], version=version)
    response.headers["connection"] = "close"
    with contextlib.suppress(RuntimeError):  # the server refuses a second head: this one's had gone out
        await response(scope, receive, send)


def closing(send: Send) -> Send:
    """`send` with `connection: close` on the response head (only while draining)."""

    async def send_closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (b"connection", b"close")]
            message = {**message, "headers": headers}
        await send(message)

    return send_closing
