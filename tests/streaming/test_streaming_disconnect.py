"""Client disconnects mid-stream over real sockets: the upstream request is cancelled and its connection
closed at once, nothing keeps reading, no task is left behind (both streamers, silent and busy upstreams)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.api.app import create_app
from gateway.api.state import app_state
from gateway.providers.transport import PoolState
from gateway.records import RequestRecord
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway, wait_until, write_config
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.streaming_support import stream_body, streaming_routes_yaml

pytestmark = pytest.mark.timeout(90)

DISCONNECTS = 200
CONCURRENT = 50


class RecordingObserver:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    async def request_finished(self, record: RequestRecord) -> None:
        self.records.append(record)


async def _tasks(request: Request) -> JSONResponse:
    """Test-only route: the tasks alive on the gateway's event loop, this request's own excluded."""
    current = asyncio.current_task()
    names = sorted(
        getattr(task.get_coro(), "__qualname__", repr(task.get_coro()))
        for task in asyncio.all_tasks()
        if task is not current
    )
    return JSONResponse(names)


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture(params=["httptools", "h11"])
def gateway(
    request: pytest.FixtureRequest, simulator: ProviderSimulator, tmp_path: Path, observer: RecordingObserver
) -> Iterator[RunningGateway]:
    """The gateway under uvicorn with either of its HTTP/1.1 implementations (they report disconnects
    through different code)."""
    app = create_app(write_config(tmp_path, streaming_routes_yaml(simulator.base_url)), reload=False)
    app_state(app).observers.append(observer)
    app.router.add_route("/_test/tasks", _tasks, methods=["GET"])
    with running_gateway(app=app, http=request.param) as running:
        yield running


def live_tasks(gateway: RunningGateway) -> list[str]:
    return httpx.get(f"{gateway.base_url}/_test/tasks", timeout=CLIENT_TIMEOUT).json()


def provider_pool(gateway: RunningGateway) -> PoolState:
    return app_state(gateway.app).running().holder.current.registry.get("sim").pool_state()


def request_bytes(port: int, body: dict[str, Any], streamer: str) -> bytes:
    payload = orjson.dumps(body)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
        f"x-use-asgi-streaming: {'true' if streamer == 'asgi' else 'false'}\r\n\r\n"
    )
    return head.encode() + payload


async def open_and_abandon(port: int, body: dict[str, Any], streamer: str, *, reset: bool) -> None:
    """Send a streaming request, wait for the first event, then go away (FIN, or RST with `reset`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_bytes(port, body, streamer))
        received = b""
        while b"data: " not in received or not received.split(b"data: ", 1)[1].count(b"\n\n"):
            data = await asyncio.wait_for(reader.read(65536), 10)
            assert data, f"gateway closed the connection before the first event: {received!r}"
            received += data
        assert received.startswith(b"HTTP/1.1 200"), received[:200]
        assert f"x-gateway-streamer: {streamer}".encode() in received
    finally:
        if reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        else:
            writer.close()
        await asyncio.gather(writer.wait_closed(), return_exceptions=True)


async def abandon_many(port: int, count: int) -> None:
    limit = asyncio.Semaphore(CONCURRENT)

    async def one(index: int) -> None:
        # Silent upstream (sent two events, then nothing) or a busy one (a token every 20 ms).
        behaviour = {"hang_after": 2} if index % 2 else {"tokens": 10_000, "token_delay": 0.02}
        async with limit:
            await open_and_abandon(
                port,
                stream_body(x_sim=behaviour),
                "asgi" if index % 4 < 2 else "starlette",
                reset=index % 3 == 0,
            )

    await asyncio.gather(*(one(index) for index in range(count)))


async def test_many_disconnects_leave_no_upstream_connection_and_no_task(
    simulator: ProviderSimulator, gateway: RunningGateway, observer: RecordingObserver
) -> None:
    baseline = live_tasks(gateway)

    await abandon_many(gateway.port, DISCONNECTS)

    simulator.wait_for(
        lambda: simulator.open_connections == 0,
        timeout=10,
        message=f"{simulator.open_connections} upstream connections still open",
    )
    assert simulator.aborted_streams == DISCONNECTS
    assert [request.outcome for request in simulator.chat_requests] == ["client_closed"] * DISCONNECTS
    assert provider_pool(gateway) == PoolState(in_use=0, idle=0)
    wait_until(lambda: len(observer.records) == DISCONNECTS, message="streams not finished")
    assert {record.stream_status for record in observer.records} == {"disconnected"}
    wait_until(lambda: live_tasks(gateway) == baseline, message=f"tasks left: {live_tasks(gateway)}")

    # The gateway still serves, and a new stream gets a new upstream connection that goes back to the pool.
    with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        answer = client.post("/v1/chat/completions", json=stream_body(x_sim={"tokens": 2}))
    assert answer.text.endswith("data: [DONE]\n\n")
    wait_until(lambda: provider_pool(gateway) == PoolState(in_use=0, idle=1))


@pytest.mark.parametrize("streamer", ["asgi", "starlette"])
async def test_a_disconnect_cancels_a_silent_upstream_read_at_once(
    simulator: ProviderSimulator, gateway: RunningGateway, streamer: str
) -> None:
    simulator.enqueue(Behaviour(hang_after=1))

    async def scenario() -> float:
        await open_and_abandon(gateway.port, stream_body(), streamer, reset=False)
        return time.monotonic()

    gone_at = await scenario()
    simulator.wait_for(lambda: simulator.aborted_streams == 1, timeout=5)
    released_after = time.monotonic() - gone_at

    assert released_after < 0.25, released_after
    assert simulator.open_connections == 0
    assert provider_pool(gateway) == PoolState(in_use=0, idle=0)


async def send_and_leave(port: int, body: dict[str, Any], streamer: str, after: float) -> None:
    """Send a streaming request and close the connection `after` seconds later, answered or not."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request_bytes(port, body, streamer))
    await writer.drain()
    await asyncio.sleep(after)
    assert reader.at_eof() is False and not reader._buffer, "the gateway answered before the first event"  # type: ignore[attr-defined]
    writer.close()
    await asyncio.gather(writer.wait_closed(), return_exceptions=True)


@pytest.mark.parametrize("streamer", ["asgi", "starlette"])
@pytest.mark.parametrize("upstream", ["no head yet", "head but no event"])
async def test_a_client_leaving_before_the_first_event_cancels_the_upstream_request(
    simulator: ProviderSimulator,
    gateway: RunningGateway,
    observer: RecordingObserver,
    streamer: str,
    upstream: str,
) -> None:
    behaviour = {"head_delay": 30} if upstream == "no head yet" else {"hang_after": 0}
    baseline = live_tasks(gateway)

    async def scenario() -> float:
        await send_and_leave(gateway.port, stream_body(x_sim=behaviour), streamer, after=0.3)
        return time.monotonic()

    gone_at = await scenario()
    simulator.wait_for(lambda: simulator.open_connections == 0, timeout=5)
    released_after = time.monotonic() - gone_at

    assert released_after < 0.25, released_after  # at once, not when a first event would have come
    assert provider_pool(gateway) == PoolState(in_use=0, idle=0)
    wait_until(lambda: len(observer.records) == 1, message="the request was not recorded")
    record = observer.records[0]
    assert (record.status_code, record.error_code, record.stream) == (499, "client_closed_request", True)
    assert record.attempts == 1  # the cancellation ends the attempt loop: no retry, no failover
    assert live_tasks(gateway) == baseline
