"""HTTP/1.1 over raw asyncio streams for the provider simulator.

No HTTP library sits between the simulator and the socket on purpose: faults such as 1-byte writes,
coalesced events, a connection dropped mid-body or a response that never comes must reach the client
exactly as scripted. This module reads requests (Content-Length or chunked bodies, keep-alive) and writes
bytes as told; `Connection.watch_peer()` notices a client that goes away while we are answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024
READ_SIZE = 64 * 1024


class PeerClosed(Exception):
    """The client closed or reset the connection while the simulator was answering."""


class BadRequest(Exception):
    """The bytes received are not an HTTP/1.1 request we can read."""


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    target: str  # path and query, as sent
    version: str
    headers: tuple[tuple[str, str], ...]  # names lower-cased, in the order received
    body: bytes

    def header(self, name: str) -> str | None:
        """The last value of header `name` (case-insensitive), or None."""
        name = name.lower()
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        tokens = {token.strip().lower() for token in (self.header("connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


class Connection:
    """One accepted client connection: a read buffer over the stream, and writes that notice the peer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._buffer = bytearray()
        self._eof = False
        self._peer_gone = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # Every write must leave as its own segment; Nagle would merge split writes.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def peer_closed(self) -> bool:
        return self._peer_gone.is_set()

    async def _fill(self) -> bool:
        """Read more bytes into the buffer; False (and the peer marked gone) at end of stream."""
        try:
            data = await self._reader.read(READ_SIZE)
        except ConnectionError:
            data = b""
        if not data:
            self._eof = True
            self._peer_gone.set()
            return False
        self._buffer += data
        return True

    async def _read_until(self, marker: bytes, limit: int) -> bytes | None:
        """Bytes up to `marker` (consumed, not returned); None on a clean EOF before any byte."""
        while (end := self._buffer.find(marker)) < 0:
            if len(self._buffer) > limit:
                raise BadRequest("request head too large")
            if self._eof or not await self._fill():
                if self._buffer:
                    raise BadRequest("connection closed in the middle of a request")
                return None
        data = bytes(self._buffer[:end])
        del self._buffer[: end + len(marker)]
        return data

    async def _read_exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if self._eof or not await self._fill():
                raise BadRequest("connection closed in the middle of a request body")
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def read_request(self) -> Request | None:
        """The next request on this connection, or None when the client closed it between requests."""
        head = await self._read_until(b"\r\n\r\n", MAX_HEAD_BYTES)
        if head is None:
            return None
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise BadRequest(f"bad request line {lines[0]!r}") from None
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise BadRequest(f"bad header line {line!r}")
            headers.append((name.strip().lower(), value.strip()))
        request = Request(method, target, version, tuple(headers), b"")
        if (request.header("transfer-encoding") or "").lower() == "chunked":
            body = await self._read_chunked_body()
        else:
            length = int(request.header("content-length") or 0)
            if length > MAX_BODY_BYTES:
                raise BadRequest("request body too large")
            body = await self._read_exact(length)
        return Request(method, target, version, tuple(headers), body)

    async def _read_chunked_body(self) -> bytes:
        body = bytearray()
        while True:
            size_line = await self._read_until(b"\r\n", 1024)
            if size_line is None:
                raise BadRequest("connection closed in a chunked body")
            size = int(size_line.split(b";", 1)[0], 16)
            if size == 0:
                while await self._read_until(b"\r\n", MAX_HEAD_BYTES):  # trailers, up to the empty line
                    pass
                return bytes(body)
            body += await self._read_exact(size)
            await self._read_exact(2)
            if len(body) > MAX_BODY_BYTES:
                raise BadRequest("request body too large")

    # While answering: notice the client going away.

    def watch_peer(self) -> None:
        """Start reading in the background so that a client closing the connection is noticed at once.

        Bytes that arrive meanwhile (a pipelined request) stay in the buffer for `read_request`.
        """

        async def watch() -> None:
            while await self._fill():
                pass

        if self._watcher is None and not self._eof:
            self._watcher = asyncio.create_task(watch())

    async def stop_watching(self) -> None:
        # Cancelling StreamReader.read() loses no data: it only waits for a signal, bytes stay buffered.
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None

    async def sleep(self, seconds: float) -> None:
        """Sleep, but raise `PeerClosed` as soon as the client goes away."""
        if self.peer_closed:
            raise PeerClosed
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._peer_gone.wait(), seconds)
        except TimeoutError:
            return
        raise PeerClosed

    async def wait_for_peer_close(self) -> None:
        await self._peer_gone.wait()

    async def send(
        self, data: bytes, *, split: int | None = None, delay: float = 0.0, chunked: bool = False
    ) -> None:
        """Write `data`, in pieces of `split` bytes with a drain (and `delay`) after each.

        With `chunked`, each piece is framed as its own HTTP chunk and written in one write, so the client's
        HTTP parser hands the body over in exactly these pieces, however TCP groups the segments.
        """
        size = split or max(len(data), 1)
        for start in range(0, len(data), size):
            piece = data[start : start + size]
            frame = b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece
            await self.send_raw(frame)
            if delay and start + size < len(data):
                await self.sleep(delay)

    async def send_raw(self, frame: bytes) -> None:
        if self.peer_closed:
            raise PeerClosed
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise PeerClosed from exc
        if self.peer_closed:
            raise PeerClosed

    def abort(self, *, reset: bool) -> None:
        """Drop the connection now: a FIN, or with `reset` an RST (SO_LINGER 0)."""
        sock = self._writer.get_extra_info("socket")
        if reset and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._writer.transport.abort()
        else:
            self._writer.close()

    async def close(self) -> None:
        await self.stop_watching()
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()
