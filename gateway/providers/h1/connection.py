"""One upstream HTTP/1.1 connection: an asyncio protocol fed to httptools, calling back into the answer it
is receiving (`response.py`, re-exported here for the pool)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

import httptools
import httpx

from gateway.providers.h1.framing import merge_content_lengths
from gateway.providers.h1.limits import MAX_HEAD, MAX_LINE, TrailerSink, check_head, find_head, head_too_large
from gateway.providers.h1.response import H1Response
from gateway.providers.h1.target import Origin

if TYPE_CHECKING:
    from gateway.providers.h1.pool import Pool

__all__ = ["Connection", "H1Response"]


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
        "_writable",
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
        self._writable: asyncio.Future[None] | None = None  # set while the transport paused our writes

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

    @property
    def writes_paused(self) -> bool:
        """The request did not fit the socket's buffers: the upstream is not reading it (yet)."""
        return self._writable is not None

    async def drain(self, timeout: float | None) -> None:
        """Wait until the transport takes writes again; `httpx.WriteTimeout` after `timeout`."""
        writable = self._writable
        if writable is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(writable)
        except TimeoutError:
            raise httpx.WriteTimeout(f"write timeout: the upstream took no bytes for {timeout:g}s") from None

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

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is not None and not response.complete:
            response.lost(exc)
        self._pool.forget(self)
        self.resume_writing()  # a request waiting to write finds the connection closed
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

    # httptools callbacks (only while a response is current: data_received checks). Narrowed with
    # `assert`, not `typing.cast`: a cast is a Python call, and these run several times per answer.

    def on_message_begin(self) -> None:
        response = self.response
        assert response is not None
        if response.complete:  # even one byte more would be the start of the next
            raise httpx.RemoteProtocolError("the upstream sent bytes after its answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        response, parser = self.response, self._parser
        assert response is not None and parser is not None
        status = parser.get_status_code()
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
        response = self.response
        assert response is not None
        response.body(body)

    def on_message_complete(self) -> None:
        response, parser = self.response, self._parser
        assert response is not None and parser is not None
        if response.has_head:  # not an interim answer's end
            response.finish(parser.should_keep_alive())


# What llhttp says of a Content-Length given twice, or as a list ("2, 2"): `framing.py` may accept it.
_CONTENT_LENGTH_REFUSALS = frozenset({"Duplicate Content-Length", "Invalid character in Content-Length"})


def _new_parser(connection: Connection) -> httptools.HttpResponseParser:
    parser = httptools.HttpResponseParser(connection)
    # A bare LF ends a line of the head (RFC 9112 2.2: a recipient MAY; h11 does). Chunk lines stay strict.
    parser.set_dangerous_leniencies(lenient_optional_cr_before_lf=True)
    return parser
