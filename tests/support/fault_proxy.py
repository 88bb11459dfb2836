"""A TCP fault proxy of our own on loopback (Toxiproxy's idea, in asyncio): it sits between a client (the
gateway) and a target (the provider simulator) and forwards bytes both ways, with faults switchable at run
time, per direction.

    async with FaultProxy("127.0.0.1", sim.port) as proxy:      # listens on proxy.port
        proxy.url                                                # "http://127.0.0.1:PORT"
        proxy.set_faults(to_client=Faults(bandwidth=200))        # from the next chunk on, every connection
        proxy.set_faults(to_client=Faults(reset_after=0))        # cut the open connections mid-stream
        proxy.connections[-1].cut_at, .peer_closed, .bytes_to_client ...
        proxy.clear_faults()

Directions: `to_client` carries the target's bytes to the client (the answers: where most faults matter),
`to_target` the client's bytes to the target. A pump reads whatever the source socket gives (one read up
to 64 KiB) and applies its direction's *current* `Faults` to it, so a change takes effect on the next chunk
of every connection, open or new. Byte limits (`reset_after`, `close_after`) count the bytes forwarded in
that direction since the connection opened: a limit at or below what went through already cuts on the next
chunk. A cut (reset or close) ends the whole connection, both sockets.

What it records (`ConnectionRecord`, one per accepted connection): bytes each way, when the last byte was
forwarded each way, when and how the proxy cut it, and whether the client side was closed by the client
(`peer_closed`: the gateway closed its upstream socket), which a test can wait for after a fault.

It runs on the loop of whoever enters it (one owner, one close path: `async with`; leaving it closes the
listener and every connection and awaits their tasks). Standard library only, so `bench/` can import it
too (`from tests.support.fault_proxy import FaultProxy` with the repository root on `sys.path`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["to_client", "to_target"]
Cut = Literal["reset", "close"]

READ_SIZE = 64 * 1024
BANDWIDTH_SLICE = 0.05  # seconds of bandwidth per write under a bandwidth cap (smooth, few wake-ups)

__all__ = ["ConnectionRecord", "FaultProxy", "Faults"]


@dataclass(frozen=True)
class Faults:
    """What one direction does to the bytes it forwards. The defaults forward them untouched."""

    latency: float = 0.0  # seconds added before every write
    bandwidth: float | None = None  # bytes per second
    slice_size: int | None = None  # write each chunk in pieces of this many bytes
    slice_delay: float = 0.0  # seconds between two pieces
    reset_after: int | None = None  # after this many bytes of the direction: TCP reset (SO_LINGER 0)
    close_after: int | None = None  # after this many bytes of the direction: clean close (FIN)
    stall: bool = False  # stop forwarding (the sockets stay open) until the fault is lifted
    slow_close: float = 0.0  # seconds between the source's end and closing the destination

    def __post_init__(self) -> None:
        if self.slice_size is not None and self.slice_size < 1:
            raise ValueError("slice_size must be at least 1 byte")
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise ValueError("bandwidth must be positive")
        for name in ("latency", "slice_delay", "slow_close"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def limit(self) -> tuple[int, Cut] | None:
        """The earliest cut, in bytes of the direction, and its kind."""
        limits: list[tuple[int, Cut]] = []
        if self.reset_after is not None:
            limits.append((self.reset_after, "reset"))
        if self.close_after is not None:
            limits.append((self.close_after, "close"))
        return min(limits) if limits else None


NO_FAULTS = Faults()


@dataclass
class ConnectionRecord:
    """One accepted connection as the proxy saw it. Times are `time.perf_counter()` values."""

    number: int  # 1, 2, ... in order of acceptance
    opened_at: float
    bytes_to_client: int = 0
    bytes_to_target: int = 0
    last_to_client_at: float | None = None  # when the last byte toward the client was written
    last_to_target_at: float | None = None
    cut: Cut | None = None  # how the proxy cut it, if it did
    cut_at: float | None = None
    cut_direction: Direction | None = None
    peer_closed: bool = False  # the client closed its side (EOF or reset read from it)
    peer_closed_at: float | None = None
    closed_at: float | None = None  # both sockets closed by the proxy: the connection is over
    connect_error: str | None = None  # the target refused or could not be reached

    @property
    def open(self) -> bool:
        return self.closed_at is None


@dataclass
class _Link:
    """The two sockets of one proxied connection and its record; pumps and the cut act on it."""

    record: ConnectionRecord
    client_reader: asyncio.StreamReader
    client_writer: asyncio.StreamWriter
    target_reader: asyncio.StreamReader | None = None
    target_writer: asyncio.StreamWriter | None = None
    over: asyncio.Event = field(default_factory=asyncio.Event)  # nothing more is forwarded: cut or left


class FaultProxy:
    """Forwards loopback TCP connections to `target_host:target_port`, applying the current `Faults`."""

    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port = 0
        self.connections: list[ConnectionRecord] = []
        self._faults: dict[Direction, Faults] = {"to_client": NO_FAULTS, "to_target": NO_FAULTS}
        self._changed = asyncio.Event()  # set (and replaced) on every change of faults
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # Lifecycle.

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    # The test's side.

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def faults(self, direction: Direction) -> Faults:
        return self._faults[direction]

    def set_faults(self, *, to_client: Faults | None = None, to_target: Faults | None = None) -> None:
        """Replace the faults of the directions given; open connections apply them from their next chunk
        (a stalled one re-reads them at once)."""
        if to_client is not None:
            self._faults["to_client"] = to_client
        if to_target is not None:
            self._faults["to_target"] = to_target
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def clear_faults(self) -> None:
        self.set_faults(to_client=NO_FAULTS, to_target=NO_FAULTS)

    @property
    def opened(self) -> int:
        """Connections accepted so far."""
        return len(self.connections)

    @property
    def open_connections(self) -> int:
        return sum(1 for record in self.connections if record.open)

    @property
    def bytes_to_client(self) -> int:
        return sum(record.bytes_to_client for record in self.connections)

    @property
    def bytes_to_target(self) -> int:
        return sum(record.bytes_to_target for record in self.connections)

    # The proxy's loop.

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Our own task, not the one asyncio would make for a coroutine callback: cancelling that one at
        # exit makes asyncio 3.11 log a spurious error.
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        record = ConnectionRecord(number=len(self.connections) + 1, opened_at=time.perf_counter())
        self.connections.append(record)
        link = _Link(record, reader, writer)
        try:
            try:
                link.target_reader, link.target_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError as exc:
                record.connect_error = str(exc)
                return
            async with asyncio.TaskGroup() as group:
                group.create_task(self._pump(link, "to_target"))
                group.create_task(self._pump(link, "to_client"))
        finally:
            _close(link.client_writer)
            if link.target_writer is not None:
                _close(link.target_writer)
            record.closed_at = time.perf_counter()

    async def _pump(self, link: _Link, direction: Direction) -> None:
        """Forward one direction until its source ends, the connection is cut, or the client left."""
        record = link.record
        source: asyncio.StreamReader | None = link.client_reader
        destination: asyncio.StreamWriter | None = link.target_writer
        if direction == "to_client":
            source, destination = link.target_reader, link.client_writer
        assert source is not None and destination is not None
        pacing = _Pacing()
        while True:
            try:
                data = await source.read(READ_SIZE)
            except OSError:
                data = b""
            if record.cut is not None:
                # After a clean close the client side is still read (and dropped) until the client
                # closes it, so the record tells when it did.
                if record.cut == "close" and direction == "to_target":
                    if data:
                        continue
                    self._client_closed(link)
                return
            if not data:
                await self._source_ended(link, direction, destination)
                return
            if not await self._hold_while_stalled(link, direction):
                return
            try:
                await self._forward(link, direction, data, destination, pacing)
            except OSError:
                return  # the destination went away: its own pump sees the end

    async def _forward(
        self,
        link: _Link,
        direction: Direction,
        data: bytes,
        destination: asyncio.StreamWriter,
        pacing: _Pacing,
    ) -> None:
        """Write one chunk under the direction's current faults; cut the connection at a byte limit."""
        faults = self._faults[direction]
        limit = faults.limit
        sent = _sent(link.record, direction)
        if limit is not None and sent + len(data) > limit[0]:
            data = data[: max(0, limit[0] - sent)]
        else:
            limit = None
        if faults.latency:
            await asyncio.sleep(faults.latency)
        for piece in _pieces(data, faults):
            await pacing.wait(len(piece), faults.bandwidth)
            destination.write(piece)
            await destination.drain()
            _count(link.record, direction, len(piece))
            if faults.slice_delay and faults.slice_size is not None:
                await asyncio.sleep(faults.slice_delay)
        if limit is not None:
            await _flushed(destination)
            self._cut(link, direction, limit[1])

    async def _hold_while_stalled(self, link: _Link, direction: Direction) -> bool:
        """Wait while the direction is stalled; False when the client left or the connection was cut."""
        while self._faults[direction].stall:
            changed = asyncio.ensure_future(self._changed.wait())
            gone = asyncio.ensure_future(link.over.wait())
            try:
                await asyncio.wait({changed, gone}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                gone.cancel()
            if link.over.is_set():
                return False
        return True

    async def _source_ended(
        self, link: _Link, direction: Direction, destination: asyncio.StreamWriter
    ) -> None:
        """The source closed: pass the end on (after `slow_close`), as a half-close."""
        if direction == "to_target":
            self._client_closed(link)
        delay = self._faults[direction].slow_close
        if delay:
            await asyncio.sleep(delay)
        with contextlib.suppress(OSError, RuntimeError):
            if destination.can_write_eof() and not destination.is_closing():
                destination.write_eof()
        if direction == "to_target":
            # An HTTP client that closed does not read on: end the other direction too.
            _close(destination)

    def _cut(self, link: _Link, direction: Direction, kind: Cut) -> None:
        """End the connection now: a reset (RST on both sockets) or a clean close (FIN on both; the
        client side is still read, to see when the client closes it)."""
        record = link.record
        record.cut, record.cut_at, record.cut_direction = kind, time.perf_counter(), direction
        link.over.set()  # a stalled other direction stops waiting
        target = link.target_writer
        assert target is not None
        if kind == "reset":
            _reset(link.client_writer)
            _reset(target)
            return
        _close(target)
        with contextlib.suppress(OSError, RuntimeError):
            link.client_writer.write_eof()

    def _client_closed(self, link: _Link) -> None:
        record = link.record
        record.peer_closed, record.peer_closed_at = True, time.perf_counter()
        link.over.set()


class _Pacing:
    """A direction's bandwidth schedule: when the next write may start."""

    def __init__(self) -> None:
        self.next_at = 0.0

    async def wait(self, size: int, bandwidth: float | None) -> None:
        if bandwidth is None:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self.next_at)
        if start > now:
            await asyncio.sleep(start - now)
        self.next_at = start + size / bandwidth


def _pieces(data: bytes, faults: Faults) -> list[bytes]:
    size = faults.slice_size
    if faults.bandwidth is not None:
        paced = max(1, int(faults.bandwidth * BANDWIDTH_SLICE))
        size = paced if size is None else min(size, paced)
    if size is None or len(data) <= size:
        return [data] if data else []
    return [data[i : i + size] for i in range(0, len(data), size)]


def _sent(record: ConnectionRecord, direction: Direction) -> int:
    return record.bytes_to_client if direction == "to_client" else record.bytes_to_target


def _count(record: ConnectionRecord, direction: Direction, size: int) -> None:
    now = time.perf_counter()
    if direction == "to_client":
        record.bytes_to_client += size
        record.last_to_client_at = now
    else:
        record.bytes_to_target += size
        record.last_to_target_at = now


async def _flushed(writer: asyncio.StreamWriter) -> None:
    """Wait until the transport handed every byte to the kernel (a reset would drop what it still holds)."""
    transport = writer.transport
    while not transport.is_closing() and transport.get_write_buffer_size():
        await asyncio.sleep(0.001)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset: SO_LINGER on with a zero timeout, then close without flushing."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _close(writer: asyncio.StreamWriter) -> None:
    if not writer.is_closing():
        writer.close()
