"""One upstream HTTP/1.1 connection (an asyncio protocol fed to httptools) and the answer it is receiving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast

import httptools
import httpx

from gateway.providers.h1.decoding import Decoder, decoder_for
from gateway.providers.h1.framing import check_transfer_coding, merge_content_lengths
from gateway.providers.h1.limits import MAX_HEAD, MAX_LINE, TrailerSink, check_head, find_head, head_too_large
from gateway.providers.h1.target import Origin

if TYPE_CHECKING:
    from gateway.providers.h1.pool import Pool

# Unread body beyond this pauses reading the socket, so a slow reader bounds what is buffered.
_HIGH_WATER = 256 * 1024


class Connection(asyncio.Protocol):
    """One upstream connection, one request at a time; httptools calls back into the current response.

    While a response head is incomplete the connection keeps its reads (`_head_reads`), for the limits
    (`limits.py`) and for the rare head llhttp refuses that we accept (a Content-Length given twice)."""

    __slots__ = (
        "_fields",
        "_head_reads",
        "_head_size",
        "_heads",
        "_merging",
        "_parser",
        "_pool",
        "_trailers",
        "closed",
        "idle_since",
        "origin",
        "response",
        "transport",
    )

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self._pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = _new_parser(self)
        self.response: H1Response | None = None
        self.closed = False
        self.idle_since = 0.0
        self._fields: list[tuple[bytes, bytes]] = []  # of the head being parsed; then the trailer sink
        self._trailers = TrailerSink()
        self._head_reads: list[bytes] | None = None  # None once the answer's head is in
        self._head_size = 0
        self._heads = 0  # heads ended so far for this request: interim (1xx) ones, then the answer's
        self._merging = False  # waiting for the end of a head to merge its Content-Length fields

    def send(self, response: H1Response, data: bytes) -> None:
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            raise httpx.RemoteProtocolError("the upstream connection closed before the request was sent")
        self.response = response
        self._fields = []
        self._trailers.reset()
        self._head_reads = []
        self._head_size = self._heads = 0
        transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:  # bytes nobody asked for on an idle connection: it cannot be reused
            self.close()
            return
        parser = self._parser
        if parser is None:
            return
        head_reads = self._head_reads
        if head_reads is not None:
            head_reads.append(data)
            self._head_size += len(data)
            if self._merging:
                self._merge_content_lengths(response)
                return
        try:
            parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._refuse(response, exc)
        else:
            if self._head_reads is not None and self._head_size > MAX_HEAD:  # a head that does not end
                self._fail(response, head_too_large())
        response.wake()  # one wake-up per read, after every callback of it

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.complete:
            response.lost(exc)
        self._pool.forget(self)
        # The parser holds this protocol for its callbacks and the transport holds it too: break both
        # cycles, so a closed connection is freed by reference counting, not left to the cyclic GC.
        self._parser = None
        self.transport = None

    # What the parser refused.

    def _fail(self, response: H1Response, error: httpx.HTTPError) -> None:
        """The upstream broke the protocol: the answer fails (unless it was complete: then only what
        followed it was wrong) and the connection is closed, never reused."""
        if not response.complete:
            response.fail(error)
        self.close()

    def _refuse(self, response: H1Response, exc: Exception) -> None:
        cause = exc.__context__  # httptools chains what a callback of ours raised
        if isinstance(cause, httpx.HTTPError):
            self._fail(response, cause)
        elif self._head_reads is not None and str(exc) in _CONTENT_LENGTH_REFUSALS:
            self._merging = True
            self._merge_content_lengths(response)
        else:
            self._fail(response, httpx.RemoteProtocolError(f"invalid HTTP from the upstream: {exc}"))

    def _merge_content_lengths(self, response: H1Response) -> None:
        """Once the head llhttp refused has ended: parse it again with its Content-Length fields made
        one (`framing.py`), with a new parser, as if it had just arrived. Off the hot path."""
        reads = cast(list[bytes], self._head_reads)
        data = b"".join(reads)
        bounds = find_head(data, self._heads + 1)
        if bounds is None:
            if len(data) > MAX_HEAD:
                self._fail(response, head_too_large())
            return  # the rest of the head is still to come
        start, end = bounds
        try:
            check_head([data], self._heads + 1)
        except httpx.HTTPError as error:
            self._fail(response, error)
            return
        merged = merge_content_lengths(data[start:end])
        if merged is None:
            self._fail(
                response, httpx.RemoteProtocolError("the upstream sent conflicting Content-Length values")
            )
            return
        # The interim heads before it were parsed already: the new parser starts at the answer's head.
        self._merging = False
        self._parser = _new_parser(self)
        self._fields, self._head_reads, self._head_size, self._heads = [], [], 0, 0
        self.data_received(merged + data[end:])

    # httptools callbacks (only while a response is current: data_received checks)

    def on_message_begin(self) -> None:
        if cast(H1Response, self.response).complete:  # even one byte more would be the start of the next
            raise httpx.RemoteProtocolError("the upstream sent bytes after its answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        response = cast(H1Response, self.response)
        status = cast(httptools.HttpResponseParser, self._parser).get_status_code()
        fields = self._fields
        self._heads += 1
        if status < 200:
            if status == 101:
                raise httpx.RemoteProtocolError(
                    "the upstream switched protocols (101), which was not asked for"
                )
            self._fields = []  # interim (100 Continue, 103 Early Hints): skipped, the answer follows
            return
        self._fields = self._trailers
        reads, self._head_reads = self._head_reads, None
        if self._head_size > MAX_LINE:  # only then could a limit have been broken unseen
            check_head(cast(list[bytes], reads), self._heads)
        response.head_done(status, fields)

    def on_body(self, body: bytes) -> None:
        cast(H1Response, self.response).body(body)

    def on_message_complete(self) -> None:
        response = cast(H1Response, self.response)
        if response.has_head:  # not an interim answer's end
            response.finish(cast(httptools.HttpResponseParser, self._parser).should_keep_alive())


# What llhttp says of a Content-Length given twice, or as a list ("2, 2"): `framing.py` may accept it.
_CONTENT_LENGTH_REFUSALS = frozenset({"Duplicate Content-Length", "Invalid character in Content-Length"})


def _new_parser(connection: Connection) -> httptools.HttpResponseParser:
    parser = httptools.HttpResponseParser(connection)
    # A bare LF ends a line of the head (RFC 9112 2.2: a recipient MAY; h11 does). Chunk lines stay strict.
    parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
    return parser


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
        headers: dict[str, str] = {}
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

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Each read's body bytes as they arrive (whatever arrived together, together: no re-chunking)."""
        while True:
            if self._chunks:
                data = self._take()
                if data:
                    yield data
            elif self.complete:
                tail = self._tail()
                if tail:
                    yield tail
                return
            elif self._error is not None:
                raise self._error
            else:
                await self._wait()

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
        reusable = self.complete and self._keep_alive and self._error is None and not self._paused
        connection._pool.release(connection, reusable)

    def discard(self) -> None:
        """The request failed or was cancelled before its answer: the connection is closed, not reused."""
        self._error = self._error or httpx.ReadError("request abandoned")
        self.release()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("read timeout"))
