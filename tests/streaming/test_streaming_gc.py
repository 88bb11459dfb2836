"""Streams leave no reference cycles: every object of a finished stream is freed by reference counting.

Cyclic garbage is not just memory held a little longer: under load the collector then walks it (and
everything it reaches) in full collections that stall the event loop for tens of milliseconds, which is
what a stream's per-chunk delay shows at p99. The gateway runs in this process (uvicorn in a thread), so
the collector here sees its objects.

Known exception, not ours: a client leaving a stream served by the Starlette streamer leaves one cycle
(the CancelledError that anyio's task group, inside `StreamingResponse`, keeps with its traceback).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.api.app import create_app
from gateway.api.state import app_state
from gateway.records import RequestRecord
from tests.streaming.test_streaming_disconnect import open_and_abandon
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway, wait_until, write_config
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.streaming_support import stream_body, streaming_routes_yaml

pytestmark = pytest.mark.timeout(60)


class CountingObserver:
    def __init__(self) -> None:
        self.count = 0

    async def request_finished(self, record: RequestRecord) -> None:
        self.count += 1


@pytest.fixture
def observer() -> CountingObserver:
    return CountingObserver()


@pytest.fixture
def gateway(
    simulator: ProviderSimulator, tmp_path: Path, observer: CountingObserver
) -> Iterator[RunningGateway]:
    app = create_app(write_config(tmp_path, streaming_routes_yaml(simulator.base_url)), reload=False)
    app_state(app).observers.append(observer)  # observers add the request context's finish callback
    with running_gateway(app=app) as running:
        yield running


def gateway_garbage(upstream_port: int) -> list[str]:
    """Kinds of cyclic garbage that belong to the gateway's side of a stream (the test's own httpx client
    makes cycles too: its responses are told apart by port)."""
    found = []
    for thing in gc.garbage:
        kind = type(thing)
        if kind.__module__.startswith("gateway."):
            found.append(f"{kind.__module__}.{kind.__qualname__}")
        elif isinstance(thing, httpx.Response) and thing.request.url.port == upstream_port:
            found.append("httpx.Response (upstream)")
        elif isinstance(thing, asyncio.Task):
            found.append(f"Task {thing.get_coro()!r}")
    return sorted(set(found))


def test_finished_and_abandoned_streams_leave_no_reference_cycles(
    simulator: ProviderSimulator, gateway: RunningGateway, observer: CountingObserver
) -> None:
    def streams(count: int) -> None:
        with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
            for index in range(count):
                headers = {"x-use-asgi-streaming": "true" if index % 2 else "false"}
                answer = client.post("/v1/chat/completions", json=stream_body(), headers=headers)
                assert answer.text.endswith("data: [DONE]\n\n")
        simulator.enqueue(Behaviour(hang_after=2))
        asyncio.run(open_and_abandon(gateway.port, stream_body(), "asgi", reset=False))
        wait_until(lambda: observer.count == done + count + 1, message="streams did not finish")

    done = 0
    streams(4)  # warm up: pools, caches, lazily built objects
    done = observer.count
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        streams(10)
        gc.collect()
        leftovers = gateway_garbage(simulator.port)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        gc.collect()

    assert leftovers == [], "\n".join(leftovers)


def test_failed_and_failed_over_requests_leave_no_reference_cycles(
    simulator: ProviderSimulator, tmp_path: Path
) -> None:
    """The error paths: a 503 failed over, a cut JSON body failed over, an error object as first event
    failed over, a stream cut mid-way, and a 503 with nowhere to go (an error answer)."""
    routes = f"""\
providers:
  a: {{type: openai, base_url: {simulator.base_url}, api_key: "${{K:-k}}", health_check: {{enabled: false}}}}
  b: {{type: openai, base_url: {simulator.base_url}, api_key: "${{K:-k}}", health_check: {{enabled: false}}}}
routes:
  two: {{targets: [{{provider: a}}, {{provider: b}}]}}
  one: {{targets: [{{provider: a}}]}}
"""
    faults = [
        ("two", False, Behaviour(status=503)),
        ("two", False, Behaviour(body='{"id": "x", "choices": [{"ind')),
        ("two", True, Behaviour(error_after=0)),
        ("two", True, Behaviour(tokens=10, drop_after=3)),
        ("one", False, Behaviour(status=503)),
    ]
    with (
        running_gateway(write_config(tmp_path, routes)) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):

        def requests() -> None:
            for model, stream, fault in faults:
                simulator.enqueue(fault)
                body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
                client.post("/v1/chat/completions", json=body)

        requests()  # warm up
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(3):
                requests()
            gc.collect()
            leftovers = gateway_garbage(simulator.port)
            frames = sorted(
                {
                    f"{thing.f_code.co_filename.rsplit('/gateway/', 1)[-1]}:{thing.f_code.co_name}"
                    for thing in gc.garbage
                    if type(thing).__name__ == "frame" and "/gateway/" in thing.f_code.co_filename
                }
            )
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
            gc.collect()
    assert leftovers == [] and frames == [], "\n".join(leftovers + frames)
