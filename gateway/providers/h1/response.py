"""An upstream answer as its connection receives it: the head, body pieces, the end, or what went wrong."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

from gateway.providers.h1.decoding import Decoder, decoder_for
from gateway.providers.h1.framing import check_transfer_coding

if TYPE_CHECKING:
    from gateway.providers.h1.connection import Connection

# Unread body beyond this pauses reading the socket, so a slow reader bounds what is buffered.
_HIGH_WATER = 256 * 1024


class H1Response:
    """An upstream answer whose head is in: `status_code`, `headers` (names lower-cased), and the body as
    it arrives (`aiter_bytes`) or whole (`aread`). `aclose()` gives the connection back to the pool when
    the answer was read to its end, and closes it otherwise."""

    __slots__ = (
        "_bodiless",
        "_chunks",
        "_connection",
        "_decoder",
        "_error",
        "_keep_alive",
        "_paused",
        "_read_timeout",
        "_released",
        "_size",
        "_until_close",
        "_waiter",
        "complete",
        "has_head",
        "headers",
        "raw_headers",
        "status_code",
    )

    def __init__(self, connection: Connection, read_timeout: float | None, bodiless: bool = False) -> None:
        self._connection = connection
        self._bodiless = bodiless  # the answer to a HEAD request
        self._read_timeout = read_timeout
        self._decoder: Decoder | None = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._error: Exception | None = None
        self._keep_alive = False
        self._until_close = False
        self._released = False
        self.status_code = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.headers: dict[str, str] = {}
        self.has_head = False
        self.complete = False

    # Called by the connection.

    def head_done(self, status: int, fields: list[tuple[bytes, bytes]]) -> None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in fields}
        if len(headers) < len(fields):  # a name given more than once: its values joined, in order
            headers = {}
            for raw_name, raw_value in fields:
                name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        transfer_encoding = headers.get("transfer-encoding")
        if transfer_encoding is not None:
            check_transfer_coding(transfer_encoding)
        self.status_code = status
        self.raw_headers = fields
        self.headers = headers
        self.has_head = True
        self._decoder = decoder_for(headers.get("content-encoding", ""))
        self._until_close = (
            "content-length" not in headers
            and "transfer-encoding" not in headers
            and status not in (204, 304)
        )
        if self._bodiless:  # the parser does not know the method: it would wait for the announced body
            self.finish(keep_alive=False)

    def body(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _HIGH_WATER and not self._paused:
            transport = self._connection.transport
            if transport is not None:
                transport.pause_reading()
                self._paused = True

    def finish(self, keep_alive: bool) -> None:
        self.complete = True
        self._keep_alive = keep_alive

    def fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error

    def lost(self, exc: Exception | None) -> None:
        """The connection closed before the answer was complete."""
        if self.has_head and self._until_close and exc is None:
            self.complete = True  # a body delimited by the end of the connection
        elif isinstance(exc, OSError):
            self.fail(httpx.ReadError(f"upstream connection lost: {exc}"))
        elif self.has_head:
            self.fail(
                httpx.RemoteProtocolError("the upstream closed the connection in the middle of the body")
            )
        else:
            self.fail(httpx.RemoteProtocolError("the upstream closed the connection without an answer"))
        self.wake()

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # Called by the request's task.

    async def _wait(self) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if self._read_timeout is None else loop.call_later(self._read_timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def wait_head(self) -> None:
        while not self.has_head:
            if self._error is not None:
                raise self._error
            await self._wait()

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._size = 0
        if self._paused:
            self._paused = False
            transport = self._connection.transport
            if transport is not None:
                transport.resume_reading()
        return data if self._decoder is None else self._decoder.decode(data)

    def _tail(self) -> bytes:
        """At the end of the body: what the decoder still holds."""
        decoder, self._decoder = self._decoder, None
        return b"" if decoder is None else decoder.flush()

    def aiter_bytes(self) -> BodyChunks:
        """Each read's body bytes as they arrive (whatever arrived together, together: no re-chunking)."""
        return BodyChunks(self)

    async def aread(self) -> bytes:
        parts: list[bytes] = []
        while True:
            if self._chunks:
                parts.append(self._take())
            elif self.complete:
                parts.append(self._tail())
                return b"".join(parts)
            elif self._error is not None:
                raise self._error
            else:
                await self._wait()

    async def aclose(self) -> None:
        self.release()

    def release(self) -> None:
        """Back to the pool if the answer was read to its end on a keep-alive connection; else closed, so no
        later request reads the rest of an abandoned answer."""
        if self._released:
            return
        self._released = True
        connection = self._connection
        connection.response = None
        error = self._error
        reusable = self.complete and self._keep_alive and error is None and not self._paused
        if error is not None:
            # Raised from this response's reads, its traceback holds their frames, which hold this
            # response: let go of it, so the failed answer is freed at once, not by the cyclic collector.
            error.__traceback__ = None
        connection._pool.release(connection, reusable)

    def discard(self) -> None:
        """The request failed or was cancelled before its answer: the connection is closed, not reused."""
        self._error = self._error or httpx.ReadError("request abandoned")
        self.release()


class BodyChunks:
    """`H1Response.aiter_bytes()`: a plain async iterator rather than an async generator, so one left
    unfinished (a relay stops reading at `[DONE]`) needs no finalizer task. Like a generator it ends for
    good at the end of the body, after raising, and once `aclose()`d."""

    __slots__ = ("_ended", "_response")

    def __init__(self, response: H1Response) -> None:
        self._response = response
        self._ended = False

    def __aiter__(self) -> BodyChunks:
        return self

    async def __anext__(self) -> bytes:
        response = self._response
        try:
            while not self._ended:
                if response._chunks:
                    data = response._take()
                    if data:
                        return data
                elif response.complete:
                    self._ended = True
                    tail = response._tail()
                    if tail:
                        return tail
                elif response._error is not None:
                    raise response._error
                else:
                    await response._wait()
        except BaseException:
            self._ended = True
            raise
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._ended = True


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("read timeout"))
