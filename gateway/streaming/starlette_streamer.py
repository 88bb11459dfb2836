"""The Starlette streamer: `StreamingResponse` over the same relay frames as the ASGI streamer.

Starlette listens for `http.disconnect` and cancels the iteration (for ASGI spec versions before 2.4; the
scope is pinned to 2.3 so that it does so under any server, instead of noticing a vanished client only at
the next write). The streamer closes the frames and the relay itself on every exit path, after Starlette's
task group has ended, so the close path never runs inside a cancelled scope.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.streaming.relay import Relay
from gateway.streaming.relay_protocol import STREAM_SLOT


class StarletteStreamer:
    __slots__ = ("headers", "relay", "status_code")

    def __init__(self, relay: Relay, headers: Sequence[tuple[bytes, bytes]], status_code: int = 200):
        self.relay = relay
        self.headers = list(headers)
        self.status_code = status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = self.relay
        frames = relay.frames()
        slot = scope.get(STREAM_SLOT)
        if slot is not None:
            slot.stream = relay  # the shutdown may now cut this stream (ends it with an error event)
        response = StreamingResponse(frames, status_code=self.status_code)
        # Our headers are complete (content-type included); replace Starlette's defaults wholesale.
        response.raw_headers = self.headers
        try:
            await response(_listening_scope(scope), receive, send)
        except OSError:  # the client vanished and the server failed `send`
            pass
        finally:
            try:
                relay.mark_disconnected()  # a no-op once the stream has ended or failed
                await frames.aclose()
            finally:
                await relay.aclose()


def _listening_scope(scope: Scope) -> Scope:
    """The scope as an ASGI 2.3 one when the server speaks 2.4 or later: `StreamingResponse` then watches
    `receive` for a disconnect instead of waiting for a `send` to fail."""
    asgi = scope.get("asgi") or {}
    version = tuple(int(part) for part in str(asgi.get("spec_version", "2.0")).split("."))
    if version < (2, 4):
        return scope
    return {**scope, "asgi": {**asgi, "spec_version": "2.3"}}
