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
    """Upstream bytes that end in `UpstreamTimeout` once the event loop's clock passes `at`. Its own async
    iterator, not an async generator (which, left unfinished at `[DONE]`, costs a finalizer task)."""

    __slots__ = ("_chunks", "_ended", "at", "inner", "message")

    def __init__(self, inner: ByteStream, at: float, message: str) -> None:
        self.inner = inner
        self.at = at  # loop.time() seconds
        self.message = message
        self._chunks: AsyncIterator[bytes] | None = None
        self._ended = False

    def __aiter__(self) -> DeadlineByteStream:
        return self

    async def __anext__(self) -> bytes:
        if self._ended:
            raise StopAsyncIteration
        chunks = self._chunks
        if chunks is None:
            chunks = self._chunks = self.inner.__aiter__()
        try:
            if asyncio.get_running_loop().time() >= self.at:
                raise UpstreamTimeout(self.message)
            try:
                async with asyncio.timeout_at(self.at):
                    return await chunks.__anext__()
            except TimeoutError:
                raise UpstreamTimeout(self.message) from None
        except BaseException:
            self._ended = True  # as a generator would: over once it raised (the end of the body too)
            raise

    @property
    def complete(self) -> bool:
        return self.inner.complete

    async def aclose(self) -> None:
        await self.inner.aclose()
