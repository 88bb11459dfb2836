"""The Starlette streamer: `StreamingResponse` over the same relay frames as the ASGI streamer.

Starlette already listens for `http.disconnect` and cancels the iteration; the wrapper makes sure the
upstream response is closed on every exit path, not whenever the generator happens to be collected.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.streaming.relay import StreamRelay


class StarletteStreamer:
    __slots__ = ("headers", "relay", "status_code")

    def __init__(self, relay: StreamRelay, headers: Sequence[tuple[bytes, bytes]], status_code: int = 200):
        self.relay = relay
        self.headers = list(headers)
        self.status_code = status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = StreamingResponse(self.relay.frames(), status_code=self.status_code)
        # Our headers are complete (content-type included); replace Starlette's defaults wholesale.
        response.raw_headers = self.headers
        try:
            await response(scope, receive, send)
        finally:
            if self.relay.stats.finished == 0.0:
                self.relay.mark_disconnected()
            await self.relay.aclose()
