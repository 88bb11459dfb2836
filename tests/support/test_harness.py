"""The end-to-end harness itself: the gateway in a thread and as a process, in front of the simulator."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
from starlette.applications import Starlette

from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, gateway_process, running_gateway
from tests.support.openai_schemas import validate_chat_chunk, validate_chat_completion
from tests.support.simulator import ProviderSimulator
from tests.support.sse_reader import iter_sse

pytestmark = pytest.mark.timeout(60)


def test_gateway_in_a_thread_reaches_the_simulator(
    simulator: ProviderSimulator, sim_gateway: RunningGateway, gateway_client: httpx.Client
) -> None:
    body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}

    answer = gateway_client.post("/v1/chat/completions", json=body)
    with gateway_client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as response:
        events = list(iter_sse(response))

    assert answer.status_code == 200, answer.text
    validate_chat_completion(answer.json())
    assert events[-1].is_done
    for event in events[:-1]:
        validate_chat_chunk(event.json())
    upstream = simulator.chat_requests
    assert [request.json["model"] for request in upstream] == ["sim-model", "sim-model"]
    assert upstream[0].headers["authorization"] == "Bearer sim-key"


def test_openai_sdk_streams_through_the_gateway(
    simulator: ProviderSimulator, openai_client: openai.OpenAI
) -> None:
    stream = openai_client.chat.completions.create(
        model="sim-model",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_body={"x_sim": {"tokens": 3, "split": 1}},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert text == "word0 word1 word2 "
    assert simulator.chat_requests[0].json["x_sim"] == {"tokens": 3, "split": 1}


def test_gateway_shutdown_closes_upstream_connections(
    simulator: ProviderSimulator, sim_config_dir: Path
) -> None:
    with running_gateway(sim_config_dir) as gateway:
        body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}
        httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=CLIENT_TIMEOUT)
        assert simulator.open_connections >= 1

    simulator.wait_for(
        lambda: simulator.open_connections == 0, message="gateway left upstream connections open"
    )


def test_a_failing_lifespan_fails_the_test_at_once() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("cannot start")
        yield

    with (
        pytest.raises(RuntimeError, match="did not start"),
        running_gateway(app=Starlette(lifespan=lifespan)),
    ):
        pass


def test_gateway_process_serves_and_stops_on_sigterm(
    simulator: ProviderSimulator, sim_config_dir: Path
) -> None:
    with gateway_process(sim_config_dir, extra_args=["--no-reload"]) as gateway:
        health = httpx.get(f"{gateway.base_url}/health", timeout=CLIENT_TIMEOUT)
        body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{gateway.base_url}/v1/chat/completions", json=body, timeout=CLIENT_TIMEOUT)

    assert health.status_code == 200
    assert answer.status_code == 200, f"{answer.text}\n{gateway.log_text()}"
    assert gateway.process.returncode in (0, -signal.SIGTERM), gateway.log_text()
    assert simulator.chat_requests[0].json["model"] == "sim-model"
