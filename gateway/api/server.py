"""The uvicorn server with the gateway's shutdown: a bounded grace, streams ended with an error event.

uvicorn's own shutdown closes idle keep-alive connections at once, waits for every request however long
(or cancels them silently after `timeout_graceful_shutdown`), ignores a second SIGTERM and re-raises the
signal at the end (exit status -15). Here, on the first SIGTERM or SIGINT:

1. the listening socket closes (no new connections) and `/health` answers 503 "draining"; open keep-alive
   connections stay open, so a load balancer polling `/health` sees it;
2. requests in flight may finish within the grace (a second signal ends it at once);
3. then the drain cuts what is left (`runtime/drain.py`): streams end with a final error event, requests
   not yet answered get a 503;
4. connections close, the lifespan closes every provider pool and the usage store; the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from types import FrameType

import uvicorn

from gateway.runtime.drain import Drain

logger = logging.getLogger("gateway")

POLL_INTERVAL = 0.05  # how often the drain looks at what is still in flight (s)
CUT_WAIT = 0.3  # how long cut requests get to write their error event (s)
CLOSE_WAIT = 0.2  # how long connections get to close after their last answer (s)


class GatewayServer(uvicorn.Server):
    """`uvicorn.Server` with the drain above. `listening` is logged once the socket accepts."""

    def __init__(self, config: uvicorn.Config, drain: Drain, grace: float, listening: str) -> None:
        super().__init__(config)
        self.drain = drain
        self.grace = grace
        self.listening = listening

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # A signal handler: attributes only, and the rest handed to the loop. Not recorded for
        # re-raising: the exit status stays 0.
        if self.should_exit:
            self.drain.hurry()
        self.should_exit = True
        try:
            asyncio.get_running_loop().call_soon_threadsafe(self._stop_listening)
        except RuntimeError:  # no loop running (yet): shutdown() does it
            self.drain.begin(self.grace)

    def _stop_listening(self) -> None:
        """Close the listening sockets, then say "draining": once /health says so, a new connection is
        refused (a load balancer that sees 503 and tries once more must not get in)."""
        for server in self.servers:
            server.close()
        self.drain.begin(self.grace)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            logger.info("%s", self.listening)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        drain = self.drain
        drain.begin(self.grace)  # also when the exit came from elsewhere than a signal
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        logger.info("draining: %d requests in flight, grace %gs", drain.started_with, drain.grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain.grace
        while drain.in_flight and not drain.hurried and loop.time() < deadline:
            await asyncio.sleep(POLL_INTERVAL)
        if drain.in_flight:
            drain.cut()
            await _wait(lambda: not drain.in_flight, CUT_WAIT)
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await _wait(lambda: not self.server_state.connections, CLOSE_WAIT)
        for task in self.server_state.tasks:
            task.cancel()
        await self.lifespan.shutdown()  # closes the provider pools and the usage store
        logger.info("%s", drain.summary())


async def _wait(done: Callable[[], bool], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done() and loop.time() < deadline:
        await asyncio.sleep(0.01)


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server starts: a busy port fails here (OSError), before
    anything says "listening"."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock
