"""Time limits that outlive the attempt loop: a stream's `total` timeout and the request `deadline` keep
running after the first event went to the client, so the upstream bytes are read under them.

Used only when such a limit is configured; a stream without one reads its upstream bytes directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from gateway.errors import UpstreamTimeout
from gateway.streaming.relay import ByteStream


class DeadlineByteStream:
    """Upstream bytes that end in `UpstreamTimeout` once the event loop's clock passes `at`."""

    __slots__ = ("at", "inner", "message")

    def __init__(self, inner: ByteStream, at: float, message: str) -> None:
        self.inner = inner
        self.at = at  # loop.time() seconds
        self.message = message

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self.inner.__aiter__()
        loop = asyncio.get_running_loop()
        while True:
            if loop.time() >= self.at:
                raise UpstreamTimeout(self.message)
            try:
                async with asyncio.timeout_at(self.at):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise UpstreamTimeout(self.message) from None
            yield chunk

    @property
    def complete(self) -> bool:
        return self.inner.complete

    async def aclose(self) -> None:
        await self.inner.aclose()
