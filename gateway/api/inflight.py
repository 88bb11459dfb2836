"""The pure ASGI middleware that counts every HTTP request in the `InflightTracker` (runtime/inflight.py),
streams until their last byte, so a reload closes retired providers only once they are idle."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.runtime.inflight import InflightTracker


class InflightMiddleware:
    """Pure ASGI middleware: count each HTTP request (streams until their end) in the tracker."""

    def __init__(self, app: ASGIApp, tracker: InflightTracker) -> None:
        self.app = app
        self.tracker = tracker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        generation = self.tracker.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.tracker.leave(generation)
