"""The fault proxy against a tiny echo server on loopback: forwarding, counting, and every fault."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from tests.support.fault_proxy import FaultProxy, Faults
from tests.support.harness import REPO_ROOT
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(30)

HANG_GUARD = 5.0


class EchoServer:
    """Echoes every read; a read that is exactly b"close" makes it close the connection instead."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.connections = 0
        self.closed_by_client = 0
        self.echoed = 0

    async def __aenter__(self) -> EchoServer:
        self.server = await asyncio.start_server(self._echo, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(65536):
                if data == b"close":
                    return
                writer.write(data)
                await writer.drain()
                self.echoed += len(data)
            self.closed_by_client += 1
        except OSError:
            self.closed_by_client += 1
        finally:
            writer.close()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


@pytest.fixture
async def proxy(echo: EchoServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", echo.port) as running:
        yield running


async def connect(proxy: FaultProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", proxy.port)


async def read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    return await asyncio.wait_for(reader.readexactly(size), HANG_GUARD)


async def test_forwards_both_ways_and_counts(proxy: FaultProxy, echo: EchoServer) -> None:
    reader, writer = await connect(proxy)
    writer.write(b"hello")
    assert await read_exactly(reader, 5) == b"hello"
    assert proxy.opened == 1 and proxy.open_connections == 1
    record = proxy.connections[0]
    assert (record.bytes_to_target, record.bytes_to_client) == (5, 5)
    assert record.cut is None
    assert not record.peer_closed

    writer.close()
    await writer.wait_closed()
    await eventually(lambda: proxy.open_connections == 0 and record.peer_closed_at is not None)
    await eventually(lambda: echo.closed_by_client == 1)  # the target side was closed too
    assert (proxy.bytes_to_target, proxy.bytes_to_client) == (5, 5)


async def test_latency_is_added_per_write(proxy: FaultProxy) -> None:
    reader, writer = await connect(proxy)
    proxy.set_faults(to_client=Faults(latency=0.2))
    started = time.perf_counter()
    writer.write(b"ping")
    assert await read_exactly(reader, 4) == b"ping"
    assert time.perf_counter() - started >= 0.2
    proxy.clear_faults()
    started = time.perf_counter()
    writer.write(b"pong")
    assert await read_exactly(reader, 4) == b"pong"
    assert time.perf_counter() - started < 0.2
    writer.close()


async def test_bandwidth_cap(proxy: FaultProxy) -> None:
    proxy.set_faults(to_client=Faults(bandwidth=2000))  # 1000 bytes: about 0.5 s
    reader, writer = await connect(proxy)
    started = time.perf_counter()
    writer.write(b"x" * 1000)
    assert await read_exactly(reader, 1000) == b"x" * 1000
    elapsed = time.perf_counter() - started
    assert 0.4 <= elapsed < 2.0, elapsed
    writer.close()


async def test_writes_are_sliced(proxy: FaultProxy) -> None:
    proxy.set_faults(to_client=Faults(slice_size=3, slice_delay=0.02))
    reader, writer = await connect(proxy)
    writer.write(b"abcdefghij")
    reads: list[bytes] = []
    while sum(map(len, reads)) < 10:
        reads.append(await asyncio.wait_for(reader.read(100), HANG_GUARD))
    assert reads == [b"abc", b"def", b"ghi", b"j"]
    writer.close()


async def test_reset_after_bytes(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.set_faults(to_client=Faults(reset_after=4))
    reader, writer = await connect(proxy)
    writer.write(b"abcdefgh")
    assert await read_exactly(reader, 4) == b"abcd"
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), HANG_GUARD)
    record = proxy.connections[0]
    assert record.cut == "reset" and record.cut_direction == "to_client" and record.cut_at is not None
    assert record.bytes_to_client == 4
    await eventually(lambda: proxy.open_connections == 0)
    await eventually(lambda: echo.closed_by_client == 1)
    writer.close()


async def test_close_after_bytes_is_a_clean_end(proxy: FaultProxy) -> None:
    proxy.set_faults(to_client=Faults(close_after=3))
    reader, writer = await connect(proxy)
    writer.write(b"abcdef")
    assert await asyncio.wait_for(reader.read(), HANG_GUARD) == b"abc"  # then EOF, no error
    record = proxy.connections[0]
    assert record.cut == "close" and not record.peer_closed
    assert proxy.open_connections == 1  # waiting for the client to close its side
    writer.close()
    await eventually(lambda: record.peer_closed and not record.open)


async def test_faults_switch_on_open_connections(proxy: FaultProxy) -> None:
    reader, writer = await connect(proxy)
    writer.write(b"one")
    assert await read_exactly(reader, 3) == b"one"
    proxy.set_faults(to_client=Faults(reset_after=0))  # already past: the next chunk is cut
    writer.write(b"two")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), HANG_GUARD)
    assert proxy.connections[0].bytes_to_client == 3
    writer.close()


async def test_stall_holds_until_lifted(proxy: FaultProxy) -> None:
    reader, writer = await connect(proxy)
    proxy.set_faults(to_client=Faults(stall=True))
    writer.write(b"held")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(100), 0.3)
    assert proxy.connections[0].bytes_to_client == 0 and proxy.open_connections == 1
    proxy.clear_faults()
    assert await read_exactly(reader, 4) == b"held"
    writer.close()


async def test_stall_ends_when_the_client_closes(proxy: FaultProxy) -> None:
    proxy.set_faults(to_client=Faults(stall=True))
    _reader, writer = await connect(proxy)
    writer.write(b"held")
    await eventually(lambda: bool(proxy.connections) and proxy.connections[0].bytes_to_target == 4)
    writer.close()
    record = proxy.connections[0]
    await eventually(lambda: record.peer_closed and not record.open)
    assert record.bytes_to_client == 0 and record.cut is None


async def test_a_cut_toward_the_target_ends_a_stalled_connection(proxy: FaultProxy, echo: EchoServer) -> None:
    proxy.set_faults(to_client=Faults(stall=True))
    reader, writer = await connect(proxy)
    writer.write(b"ab")
    await eventually(lambda: echo.echoed == 2)  # the answer is held by the stalled direction
    proxy.set_faults(to_target=Faults(reset_after=0))
    writer.write(b"cd")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), HANG_GUARD)
    record = proxy.connections[0]
    assert record.cut == "reset" and record.cut_direction == "to_target" and record.bytes_to_target == 2
    await eventually(lambda: not record.open)
    writer.close()


async def test_slow_close(proxy: FaultProxy) -> None:
    proxy.set_faults(to_client=Faults(slow_close=0.3))
    reader, writer = await connect(proxy)
    started = time.perf_counter()
    writer.write(b"close")  # the echo server closes the connection
    assert await asyncio.wait_for(reader.read(), HANG_GUARD) == b""
    assert time.perf_counter() - started >= 0.3
    writer.close()


async def test_unreachable_target_is_recorded() -> None:
    async with EchoServer() as gone:
        port = gone.port
    async with FaultProxy("127.0.0.1", port) as proxy:
        reader, writer = await connect(proxy)
        assert await asyncio.wait_for(reader.read(), HANG_GUARD) == b""
        record = proxy.connections[0]
        assert record.connect_error and not record.open
        writer.close()


async def test_leaving_closes_every_connection_and_task(echo: EchoServer) -> None:
    async with FaultProxy("127.0.0.1", echo.port) as proxy:
        proxy.set_faults(to_client=Faults(stall=True))
        clients = [await connect(proxy) for _ in range(3)]
        for _, writer in clients:
            writer.write(b"x")
        # Every byte read off the client sockets (closing one with unread bytes would be a reset).
        await eventually(lambda: proxy.open_connections == 3 and proxy.bytes_to_target == 3)
    assert proxy.open_connections == 0
    assert not proxy._tasks
    for reader, writer in clients:
        assert await asyncio.wait_for(reader.read(), HANG_GUARD) == b""
        writer.close()


def test_imports_only_the_standard_library() -> None:
    """bench/ imports the proxy too (with the repository root on sys.path): nothing of the test tools."""
    probe = (
        "import sys; before = set(sys.modules); import tests.support.fault_proxy; "
        "new = {name.split('.')[0] for name in set(sys.modules) - before}; "
        "print(sorted(new - set(sys.stdlib_module_names) - {'tests'}))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=30
    )
    assert found.stdout.strip() == "[]", found.stdout
