"""The low-level streamer: relay frames straight to the ASGI `send`, no Starlette response in between.

`http.response.start`, then one `http.response.body` (`more_body=True`) per event, then an empty final
body. A watcher task listens on `receive` for `http.disconnect` and cancels the relay at once, so an
upstream that is silent for a while is still released the moment the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.types import Message, Receive, Scope, Send

from gateway.streaming.relay import StreamRelay


class AsgiStreamer:
    __slots__ = ("headers", "relay", "status_code")

    def __init__(self, relay: StreamRelay, headers: Sequence[tuple[bytes, bytes]], status_code: int = 200):
        self.relay = relay
        self.headers = list(headers)
        self.status_code = status_code

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = self.relay
        task = asyncio.current_task()
        assert task is not None
        disconnected = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, task, disconnected))
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.headers})
            async for out in relay.frames():
                await send({"type": "http.response.body", "body": out, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not disconnected.is_set():
                raise
            task.uncancel()
            relay.mark_disconnected()
        except OSError:  # the server reports a vanished client by failing `send`
            relay.mark_disconnected()
        finally:
            watcher.cancel()
            await relay.aclose()


async def _watch_disconnect(receive: Receive, task: asyncio.Task[None], disconnected: asyncio.Event) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()
            task.cancel()
            return
