"""Faults in the middle of a stream, on real sockets: client -> gateway (uvicorn) -> fault proxy -> simulator.

The proxy (tests/support/fault_proxy.py) cuts the upstream connection after the client has its first few
events: a TCP reset, a clean close (FIN), a stall (the socket stays open, nothing comes) or a slow trickle.
After the first byte the gateway cannot answer with an HTTP error any more: the stream must end with one
error event in the client's API's format, quickly (a cut: within `CUT_BUDGET` of it; a stall: at the
provider's read timeout), with no `[DONE]`, no retry or failover, the upstream socket closed and nothing
broken left in the pool. A trickle slower than the whole stream but faster than the read timeout per read
completes: `timeouts.read` bounds the gap between two reads, not the stream.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support.fault_proxy import ConnectionRecord, FaultProxy, Faults
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway, write_config
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)

READ_TIMEOUT = 1.0  # the providers' timeouts.read
CUT_BUDGET = 0.2  # seconds from the proxy's cut to the client's error
EVENTS_BEFORE_FAULT = 3
MESSAGES: Any = [{"role": "user", "content": "say something"}]
# Long enough that the fault always lands in the middle: 40 events, 50 ms apart.
LONG_STREAM = Behaviour(tokens=40, token_delay=0.05)

CUTS = {
    "reset": Faults(reset_after=0),  # already past: the next upstream chunk is cut
    "close": Faults(close_after=0),
}


def routes_yaml(proxy_url: str) -> str:
    """Both providers behind the proxy, with a short read timeout and retries on (so a retry after the
    first byte would show)."""
    common = f"""\
    timeouts: {{read: {READ_TIMEOUT}}}
    retry: {{attempts: 3, backoff: {{base: 0}}}}
    health_check: {{enabled: false}}"""
    return f"""\
providers:
  sim:
    type: openai
    base_url: {proxy_url}/v1
    api_key: ${{SIM_API_KEY:-sim-key}}
{common}
  claude:
    type: anthropic
    base_url: {proxy_url}
    api_key: ${{SIM_ANTHROPIC_KEY:-sk-ant-sim}}
{common}
routes:
  sim-model:
    targets: [{{provider: sim}}]
  claude-sim:
    targets: [{{provider: claude}}]
"""


@pytest.fixture
async def proxy(simulator: ProviderSimulator) -> AsyncIterator[FaultProxy]:
    async with FaultProxy("127.0.0.1", simulator.port) as running:
        yield running


@pytest.fixture
def gateway(proxy: FaultProxy, tmp_path: Path) -> Iterator[RunningGateway]:
    with running_gateway(write_config(tmp_path, routes_yaml(proxy.url))) as running:
        yield running


# Each SDK's first error costs it about 200 ms of setup of its own (the gateway wrote the error event
# within a millisecond of the cut): one error answer first, so the timings measure the stream.


@pytest.fixture
async def openai_client(gateway: RunningGateway) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.base_url}/v1", api_key="client-key", timeout=10.0, max_retries=0
    ) as client:
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="no-such-model", messages=MESSAGES)
        yield client


@pytest.fixture
async def anthropic_client(gateway: RunningGateway) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=gateway.base_url, api_key="unused", max_retries=0, timeout=10.0
    ) as client:
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.create(model="no-such-model", max_tokens=8, messages=MESSAGES)
        yield client


@pytest.fixture
async def http(gateway: RunningGateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        yield client


def only_connection(proxy: FaultProxy) -> ConnectionRecord:
    assert proxy.opened == 1, proxy.connections
    return proxy.connections[0]


def fault_time(record: ConnectionRecord, name: str) -> float:
    """When the fault hit the gateway: the cut, or for a stall the last byte it received."""
    moment = record.last_to_client_at if name == "stall" else record.cut_at
    assert moment is not None, record
    return moment


def check_elapsed(name: str, elapsed: float) -> None:
    if name == "stall":
        assert READ_TIMEOUT * 0.75 <= elapsed <= READ_TIMEOUT * 1.25, elapsed
    else:
        assert 0 <= elapsed <= CUT_BUDGET, elapsed


async def check_upstream_closed(proxy: FaultProxy, record: ConnectionRecord, name: str) -> None:
    """The faulted connection is over on the gateway's side too (for a reset the proxy ended it)."""
    if name == "reset":
        assert record.cut == "reset"
    else:
        await eventually(lambda: record.peer_closed, message=f"the gateway kept its socket: {record}")
    await eventually(lambda: not record.open)


async def pool_connections(http: httpx.AsyncClient, provider: str) -> dict[str, float]:
    """The gateway's pool toward `provider`, from /metrics: {"in_use": n, "idle": n, "waiting": n}."""
    text = (await http.get("/metrics")).text
    pattern = rf'^gateway_provider_connections\{{provider="{provider}",state="(\w+)"[^}}]*\}} (\S+)$'
    return {state: float(value) for state, value in re.findall(pattern, text, re.MULTILINE)}


async def check_pool_clean_and_usable(
    http: httpx.AsyncClient, simulator: ProviderSimulator, proxy: FaultProxy, provider: str = "sim"
) -> None:
    """Nothing of the broken connection is left in the pool, and the next stream works on a new one."""
    pool: dict[str, float] = {}

    async def empty() -> bool:
        pool.update(await pool_connections(http, provider))
        return pool.get("in_use") == 0 and pool.get("idle") == 0

    deadline = time.perf_counter() + 5
    while not await empty():
        assert time.perf_counter() < deadline, f"the pool kept a connection: {pool}"
        await asyncio.sleep(0.01)  # polling: the pool lets go of the connection on the gateway's loop
    requests_before = len(simulator.requests)
    simulator.default = Behaviour(tokens=3)
    if provider == "sim":
        body = {"model": "sim-model", "messages": MESSAGES, "stream": True}
        path, end = "/v1/chat/completions", "data: [DONE]"
    else:
        body = {"model": "claude-sim", "max_tokens": 64, "messages": MESSAGES, "stream": True}
        path, end = "/v1/messages", "event: message_stop"
    answer = await http.post(path, json=body)
    assert answer.status_code == 200 and end in answer.text, answer.text
    assert len(simulator.requests) == requests_before + 1
    assert proxy.opened == 2  # a new connection: the broken one was not taken from the pool


# Chat completions through the openai SDK.


@pytest.mark.parametrize("name", ["reset", "close", "stall"])
async def test_sdk_stream_fails_after_an_upstream_fault(
    name: str,
    simulator: ProviderSimulator,
    proxy: FaultProxy,
    openai_client: openai.AsyncOpenAI,
    http: httpx.AsyncClient,
) -> None:
    simulator.default = LONG_STREAM
    fault = CUTS.get(name, Faults(stall=True))
    received = 0
    stream = await openai_client.chat.completions.create(model="sim-model", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError) as caught:
        async with stream:
            async for _ in stream:
                received += 1
                if received == EVENTS_BEFORE_FAULT:
                    proxy.set_faults(to_client=fault)
    raised_at = time.perf_counter()
    assert EVENTS_BEFORE_FAULT <= received < LONG_STREAM.tokens
    record = only_connection(proxy)
    check_elapsed(name, raised_at - fault_time(record, name))
    assert "provider 'sim'" in caught.value.message
    assert len(simulator.chat_requests) == 1  # no retry after the first byte
    await check_upstream_closed(proxy, record, name)
    proxy.clear_faults()
    await check_pool_clean_and_usable(http, simulator, proxy)


# The same stream read as SSE lines: exactly one final error event, no [DONE].


@pytest.mark.parametrize("name", ["reset", "close", "stall"])
async def test_sse_lines_end_with_one_error_event_and_no_done(
    name: str, simulator: ProviderSimulator, proxy: FaultProxy, http: httpx.AsyncClient
) -> None:
    simulator.default = LONG_STREAM
    fault = CUTS.get(name, Faults(stall=True))
    data: list[str] = []
    error_at = 0.0
    body = {"model": "sim-model", "messages": MESSAGES, "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data.append(line.removeprefix("data: "))
            if len(data) == EVENTS_BEFORE_FAULT:
                proxy.set_faults(to_client=fault)
            if '"error"' in line:
                error_at = time.perf_counter()
    record = only_connection(proxy)
    assert error_at, data
    check_elapsed(name, error_at - fault_time(record, name))
    assert "[DONE]" not in data
    *events, last = (json.loads(item) for item in data)
    assert set(last) == {"error"} and set(last["error"]) >= {"message", "type", "param", "code"}
    assert all("error" not in event and event["object"] == "chat.completion.chunk" for event in events)
    assert len(simulator.chat_requests) == 1
    await check_upstream_closed(proxy, record, name)
    proxy.clear_faults()
    await check_pool_clean_and_usable(http, simulator, proxy)


# A slow trickle: slower than the read timeout over the whole stream, never between two reads.


async def test_slow_trickle_within_the_read_timeout_completes(
    simulator: ProviderSimulator, proxy: FaultProxy, openai_client: openai.AsyncOpenAI
) -> None:
    simulator.default = Behaviour(tokens=4, stamp=False)
    proxy.set_faults(to_client=Faults(bandwidth=300))  # 15 bytes every 50 ms
    started = time.perf_counter()
    stream = await openai_client.chat.completions.create(model="sim-model", messages=MESSAGES, stream=True)
    async with stream:
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    elapsed = time.perf_counter() - started
    assert text == "word0 word1 word2 word3 "
    assert elapsed > 1.5 * READ_TIMEOUT  # the whole stream took longer than the read timeout
    assert len(simulator.chat_requests) == 1
    record = only_connection(proxy)
    assert record.cut is None and record.bytes_to_client > 300


# Anthropic Messages passed through natively: the client gets Anthropic's `event: error`.


async def test_messages_stream_ends_with_an_anthropic_error_event(
    simulator: ProviderSimulator,
    proxy: FaultProxy,
    anthropic_client: anthropic.AsyncAnthropic,
    http: httpx.AsyncClient,
) -> None:
    simulator.default = LONG_STREAM
    received = 0
    stream = await anthropic_client.messages.create(
        model="claude-sim", max_tokens=64, messages=MESSAGES, stream=True
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with stream:
            async for _ in stream:
                received += 1
                if received == EVENTS_BEFORE_FAULT:
                    proxy.set_faults(to_client=CUTS["reset"])
    raised_at = time.perf_counter()
    record = only_connection(proxy)
    check_elapsed("reset", raised_at - fault_time(record, "reset"))
    error = caught.value.body
    assert isinstance(error, dict) and error["type"] == "error", error
    assert set(error["error"]) >= {"type", "message"} and "provider 'claude'" in error["error"]["message"]
    assert len(simulator.messages_requests) == 1
    await check_upstream_closed(proxy, record, "reset")
    proxy.clear_faults()
    await check_pool_clean_and_usable(http, simulator, proxy, provider="claude")


# Responses translated to chat: the client gets `response.failed` as the stream's last event.


async def test_responses_stream_ends_with_response_failed(
    simulator: ProviderSimulator,
    proxy: FaultProxy,
    openai_client: openai.AsyncOpenAI,
    http: httpx.AsyncClient,
) -> None:
    simulator.default = LONG_STREAM
    types: list[str] = []
    failed_at = 0.0
    stream = await openai_client.responses.create(model="sim-model", input="say something", stream=True)
    async with stream:
        async for event in stream:
            types.append(event.type)
            if len(types) == EVENTS_BEFORE_FAULT:
                proxy.set_faults(to_client=CUTS["close"])
            if event.type == "response.failed":
                failed_at = time.perf_counter()
                assert event.response.status == "failed"
                assert event.response.error is not None and "provider 'sim'" in event.response.error.message
    record = only_connection(proxy)
    assert failed_at, types
    check_elapsed("close", failed_at - fault_time(record, "close"))
    assert types[-1] == "response.failed" and "response.completed" not in types
    assert len(simulator.chat_requests) == 1
    await check_upstream_closed(proxy, record, "close")
    proxy.clear_faults()
    await check_pool_clean_and_usable(http, simulator, proxy)
