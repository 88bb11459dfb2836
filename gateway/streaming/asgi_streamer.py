"""The low-level streamer: relay frames straight to the ASGI `send`, no Starlette response in between.

`http.response.start`, then one `http.response.body` per piece the relay hands out (a read's events),
the one carrying `[DONE]` with `more_body=False`, so the end of the body goes out in the same write.
A watcher task listens on `receive` for `http.disconnect` and cancels the streaming task at once, so
an upstream that is silent for a while is still released the moment the client goes away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from starlette.types import Receive, Scope, Send

from gateway.streaming.relay import Relay
from gateway.streaming.relay_protocol import STREAM_SLOT


class AsgiStreamer:
    __slots__ = ("headers", "relay", "status_code", "watch")

    def __init__(
        self,
        relay: Relay,
        headers: Sequence[tuple[bytes, bytes]],
        status_code: int = 200,
        watch: DisconnectWatch | None = None,
    ):
        self.relay = relay
        self.headers = list(headers)
        self.status_code = status_code
        self.watch = watch  # one already watching since before the first event (api/chat.py), if any

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = self.relay
        frames = relay.frames()
        slot = scope.get(STREAM_SLOT)
        if slot is not None:
            slot.stream = relay  # the shutdown may now cut this stream (ends it with an error event)
        watch = self.watch if self.watch is not None else DisconnectWatch(receive)
        self.watch = None
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.headers})
            ended = False
            async for out in frames:
                if relay.done:  # `[DONE]` and the body's end in one write
                    watch.active = False  # before the send: a disconnect now must not cancel the cleanup
                    await send({"type": "http.response.body", "body": out, "more_body": False})
                    ended = True
                else:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            if not ended:
                watch.active = False
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            # Ours (the client left) unless it was not the watcher, or someone else cancelled as well.
            if not watch.fired or watch.task.uncancel() > 0:
                raise
            relay.mark_disconnected()
        except OSError:  # an ASGI 2.4 server reports a vanished client by failing `send`
            relay.mark_disconnected()
        finally:
            try:
                watch.stop()
                await frames.aclose()
                await relay.aclose()
            finally:
                await watch.wait_stopped()


class DisconnectWatch:
    """Cancels the current task when the client disconnects while `active` is true.

    The cancellation reaches the streaming task at whatever it is awaiting (an upstream read or a `send`):
    the upstream read is abandoned at once, and `fired` tells the task that the cancellation was ours.
    With `started=False` it watches only once `start()` is called (`late_watch.py` does it for requests
    whose answer is slow): a quick answer then costs no task at all.
    """

    __slots__ = ("_receive", "_watcher", "active", "fired", "task")

    def __init__(self, receive: Receive, *, started: bool = True) -> None:
        task = asyncio.current_task()
        assert task is not None, "DisconnectWatch needs a running task"
        self.task = task
        self.active = True
        self.fired = False
        self._receive = receive
        self._watcher: asyncio.Task[None] | None = None
        if started:
            self.start()

    def start(self) -> None:
        """Start watching (at once, or later for a `started=False` watch: `late_watch.py`)."""
        if self.active and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="gateway-disconnect-watch")

    async def _watch(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                if self.active:
                    self.fired = True
                    self.task.cancel()
                return

    @property
    def watching(self) -> bool:
        """A watcher task was started (and must be awaited by `close`)."""
        return self._watcher is not None

    def stop(self) -> None:
        self.active = False
        if self._watcher is not None:
            self._watcher.cancel()

    async def close(self) -> None:
        """Stop watching and wait until the watcher task has ended."""
        self.stop()
        await self.wait_stopped()

    async def wait_stopped(self) -> None:
        """Wait for the watcher task to end, so that no task outlives the request."""
        watcher = self._watcher
        if watcher is not None and not watcher.done():
            # A future and a callback: what `asyncio.gather` costs, without the rest.
            ended = asyncio.get_running_loop().create_future()

            def end(_: object) -> None:
                if not ended.done():
                    ended.set_result(None)

            watcher.add_done_callback(end)
            await ended
        # The cancelled watcher keeps its CancelledError, whose traceback holds `_watch`'s frame, which
        # holds this object: a cycle through the request's task and everything it references. Breaking it
        # lets reference counting free the request at once instead of leaving it to the cyclic GC (whose
        # full collections then stall the event loop for tens of milliseconds under load).
        self._watcher = None
        del self.task
