"""Graceful shutdown over real sockets: `gateway serve` as a process in front of the provider simulator.

On SIGTERM the listening socket closes, `/health` answers 503 "draining" on a keep-alive connection that
was open before (a fresh connection is refused: the port no longer accepts), streams in flight may finish
within `--shutdown-grace`, and when it ends every stream still open ends with a final error event in its
API's format (never a silent truncation), a request not yet answered gets a 503; the process exits 0
within grace + 1 s. A second SIGTERM ends the grace at once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.harness import CLIENT_TIMEOUT, GatewayProcess, gateway_process, write_config
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.sse_reader import SSEEvent, SSEParser
from tests.support.waiting import eventually

LONG = Behaviour(tokens=400, token_delay=0.05)  # ~20 s: far longer than any grace here
EXIT_SLACK = 1.0  # the process exits within grace + this
HELLO = [{"role": "user", "content": "Hello"}]


def routes_yaml(root_url: str) -> str:
    return f"""\
providers:
  sim:
    type: openai
    base_url: {root_url}/v1
    api_key: ${{SIM_API_KEY:-sim-key}}
    health_check: {{enabled: false}}
  claude:
    type: anthropic
    base_url: {root_url}
    api_key: ${{SIM_API_KEY:-sim-key}}
    health_check: {{enabled: false}}
routes:
  sim-model:
    targets: [{{provider: sim}}]
  claude-sim:
    targets: [{{provider: claude}}]
"""


@pytest.fixture
def config_dir(simulator: ProviderSimulator, tmp_path: Path) -> Path:
    return write_config(tmp_path, routes_yaml(simulator.root_url))


# What a client sends, per API (chat through both streamers).
REQUESTS: dict[str, tuple[str, dict[str, Any], dict[str, str]]] = {
    "chat-asgi": (
        "/v1/chat/completions",
        {"model": "sim-model", "stream": True, "messages": HELLO},
        {"x-use-asgi-streaming": "true"},
    ),
    "chat-starlette": (
        "/v1/chat/completions",
        {"model": "sim-model", "stream": True, "messages": HELLO},
        {"x-use-asgi-streaming": "false"},
    ),
    "messages": (
        "/v1/messages",
        {"model": "claude-sim", "stream": True, "max_tokens": 1000, "messages": HELLO},
        {"anthropic-version": "2023-06-01"},
    ),
    "responses": ("/v1/responses", {"model": "sim-model", "stream": True, "input": "Hello"}, {}),
}


@dataclass
class StreamOutcome:
    kind: str
    events: list[SSEEvent] = field(default_factory=list)
    status: int = 0
    failure: str | None = None  # the connection broke (a silent truncation)

    @property
    def ending(self) -> str:
        """One of `complete`, `error` (a final error event in the API's format), or what else it was."""
        if self.failure is not None:
            return f"broken: {self.failure}"
        if not self.events:
            return "no events"
        last = self.events[-1]
        if self.kind.startswith("chat"):
            if last.is_done:
                return "complete"
            if "error" in last.json() and not any(event.is_done for event in self.events):
                return "error"
        elif self.kind == "messages":
            if last.event == "message_stop":
                return "complete"
            if last.event == "error" and last.json()["error"]["type"] in ("overloaded_error", "api_error"):
                return "error"
        else:
            if last.event == "response.completed":
                return "complete"
            if last.event == "response.failed" and last.json()["response"]["status"] == "failed":
                return "error"
        return f"ended after {last.event or last.data[:60]!r}"


async def read_stream(client: httpx.AsyncClient, kind: str, outcome: StreamOutcome) -> None:
    path, body, headers = REQUESTS[kind]
    parser = SSEParser()
    try:
        async with client.stream("POST", path, json=body, headers=headers) as response:
            outcome.status = response.status_code
            async for line in response.aiter_lines():
                event = parser.feed_line(line)
                if event is not None:
                    outcome.events.append(event)
    except httpx.HTTPError as exc:
        outcome.failure = repr(exc)


async def wait_exit(gateway: GatewayProcess, timeout: float) -> tuple[int, float]:
    """The exit status and how long it took from now."""
    started = time.monotonic()
    status = await asyncio.to_thread(gateway.process.wait, timeout)
    return status, time.monotonic() - started


def grace_args(seconds: float) -> list[str]:
    return ["--no-reload", "--shutdown-grace", str(seconds)]


async def test_streams_past_the_grace_end_with_an_error_event_and_the_process_exits_0(
    simulator: ProviderSimulator, config_dir: Path
) -> None:
    simulator.default = LONG
    grace = 2.0
    kinds = [kind for _ in range(5) for kind in REQUESTS]  # 20 streams, 5 per API and streamer
    with gateway_process(config_dir, extra_args=grace_args(grace)) as gateway:
        limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
        async with (
            httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT, limits=limits) as client,
            httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as health,
        ):
            assert (await health.get("/health")).status_code == 200  # its connection stays open
            outcomes = [StreamOutcome(kind) for kind in kinds]
            tasks = [asyncio.create_task(read_stream(client, o.kind, o)) for o in outcomes]
            await eventually(lambda: all(len(o.events) >= 2 for o in outcomes), 10, "streams did not start")

            gateway.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            draining = await poll_until_draining(health)
            assert draining["status"] == "draining"
            with pytest.raises(httpx.ConnectError):  # no new connections during the grace
                async with httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as fresh:
                    await fresh.get("/health")
            await asyncio.gather(*tasks)
            status, _ = await wait_exit(gateway, grace + 5)
            elapsed = time.monotonic() - sent

    assert status == 0
    assert elapsed <= grace + EXIT_SLACK, f"exited {elapsed:.2f}s after SIGTERM (grace {grace}s)"
    assert [o.ending for o in outcomes] == ["error"] * len(outcomes)
    assert all(o.status == 200 for o in outcomes)
    assert all(len(o.events) > 5 for o in outcomes)  # they were streaming up to the grace's end
    log = gateway.log_text()
    assert f"draining: {len(outcomes)} requests in flight, grace 2s" in log
    assert "drained: 0 finished, 20 cut (chat=10, messages=5, responses=5)" in log
    assert simulator.wait_for(lambda: simulator.open_connections == 0, timeout=5) is not False


async def poll_until_draining(client: httpx.AsyncClient) -> dict[str, Any]:
    """`/health` on the client's open keep-alive connection until it answers 503."""
    body: dict[str, Any] = {}

    async def poll() -> None:
        nonlocal body
        while True:
            response = await client.get("/health")
            if response.status_code == 503:
                body = response.json()
                return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), 5)
    return body


async def test_a_second_sigterm_ends_the_grace_at_once(
    simulator: ProviderSimulator, config_dir: Path
) -> None:
    simulator.default = LONG
    with gateway_process(config_dir, extra_args=grace_args(60)) as gateway:
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
            outcomes = [StreamOutcome(kind) for kind in ("chat-asgi", "messages", "responses")]
            tasks = [asyncio.create_task(read_stream(client, o.kind, o)) for o in outcomes]
            await eventually(lambda: all(len(o.events) >= 2 for o in outcomes), 10, "streams did not start")
            gateway.send_signal(signal.SIGTERM)
            await asyncio.to_thread(gateway.wait_for_log, "draining: 3 requests in flight, grace 60s")
            gateway.send_signal(signal.SIGTERM)
            status, took = await wait_exit(gateway, 10)
            await asyncio.gather(*tasks)

    assert status == 0
    assert took <= EXIT_SLACK
    assert [o.ending for o in outcomes] == ["error"] * 3
    assert "drained: 0 finished, 3 cut (chat=1, messages=1, responses=1)" in gateway.log_text()


async def test_a_stream_that_fits_in_the_grace_completes(
    simulator: ProviderSimulator, config_dir: Path
) -> None:
    simulator.default = Behaviour(tokens=20, token_delay=0.05)  # ~1 s
    with gateway_process(config_dir, extra_args=grace_args(10)) as gateway:
        async with openai.AsyncOpenAI(base_url=f"{gateway.base_url}/v1", api_key="unused") as client:
            stream = await client.chat.completions.create(model="sim-model", messages=HELLO, stream=True)
            pieces: list[str] = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if len(pieces) == 2:
                    gateway.send_signal(signal.SIGTERM)
            finished = time.monotonic()
        status, _ = await wait_exit(gateway, 10)
        assert time.monotonic() - finished < 2  # it did not wait out the grace

    assert status == 0
    assert len(pieces) == 20
    log = gateway.log_text()
    assert "draining: 1 requests in flight, grace 10s" in log
    assert "drained: 1 finished, 0 cut" in log


async def test_a_request_still_waiting_for_its_answer_gets_a_503_in_its_api_shape(
    simulator: ProviderSimulator, config_dir: Path
) -> None:
    simulator.default = Behaviour(head_delay=20)
    with gateway_process(config_dir, extra_args=grace_args(1)) as gateway:
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
            chat = asyncio.create_task(
                client.post("/v1/chat/completions", json={"model": "sim-model", "messages": HELLO})
            )
            messages = asyncio.create_task(
                client.post(
                    "/v1/messages",
                    json={"model": "claude-sim", "max_tokens": 10, "messages": HELLO},
                    headers={"anthropic-version": "2023-06-01"},
                )
            )
            stream = StreamOutcome("chat-asgi")  # still waiting for its first event
            streaming = asyncio.create_task(read_stream(client, "chat-asgi", stream))
            await eventually(lambda: len(simulator.requests) == 3, 10, "requests did not reach the upstream")
            gateway.send_signal(signal.SIGTERM)
            chat_answer, messages_answer = await chat, await messages
            await streaming
        status, _ = await wait_exit(gateway, 5)

    assert status == 0
    assert chat_answer.status_code == 503
    assert chat_answer.json()["error"]["code"] == "gateway_shutting_down"
    assert set(chat_answer.json()["error"]) == {"message", "type", "param", "code"}
    assert messages_answer.status_code == 503
    assert messages_answer.json()["type"] == "error"
    assert messages_answer.json()["error"]["type"] == "api_error"
    assert stream.status == 503 and stream.events == []
    assert "drained: 0 finished, 3 cut (chat=2, messages=1)" in gateway.log_text()


def test_sigterm_with_nothing_in_flight_exits_0_at_once(config_dir: Path) -> None:
    with gateway_process(config_dir, extra_args=grace_args(30)) as gateway:
        assert httpx.get(f"{gateway.base_url}/health", timeout=CLIENT_TIMEOUT).status_code == 200
        gateway.send_signal(signal.SIGTERM)
        started = time.monotonic()
        status = gateway.process.wait(10)
        took = time.monotonic() - started

    assert status == 0
    assert took <= EXIT_SLACK
    log = gateway.log_text()
    assert "draining: 0 requests in flight, grace 30s" in log
    assert "drained: 0 finished, 0 cut" in log
