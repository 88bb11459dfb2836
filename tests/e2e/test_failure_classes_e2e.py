"""Failures where nothing reached the client yet are upstream errors, failed over like a 5xx: a 200 JSON
answer cut short, and a stream whose first event is an error object. A stream cut mid-way counts against
its target's breaker."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.harness import CLIENT_TIMEOUT, running_gateway
from tests.support.resilience_support import attempts, chat, provider, route, write_gateway_config
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def backup() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture
def gateway_url(
    simulator: ProviderSimulator, backup: ProviderSimulator, write_routes: Callable[..., Path]
) -> Iterator[str]:
    """Route `r`: target `a` (the simulator under test; breaker threshold 3) first, then `b`."""
    breaker = {"failure_threshold": 3, "cooldown": 30}
    providers = {"a": provider(simulator.base_url, circuit_breaker=breaker), "b": provider(backup.base_url)}
    with running_gateway(write_gateway_config(write_routes, providers, {"r": route("a", "b")})) as gateway:
        yield gateway.base_url


def test_a_cut_json_body_fails_over(
    gateway_url: str, simulator: ProviderSimulator, backup: ProviderSimulator
) -> None:
    simulator.enqueue(Behaviour(body='{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"ind'))
    with httpx.Client(base_url=gateway_url, timeout=CLIENT_TIMEOUT) as client:
        response = chat(client)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]
    assert attempts(response) == 2
    assert len(simulator.chat_requests) == 1 and len(backup.chat_requests) == 1


def test_a_cut_json_body_with_nowhere_to_go_is_a_502_not_a_200(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    config = write_gateway_config(write_routes, {"a": provider(simulator.base_url)}, {"r": route("a")})
    simulator.enqueue(Behaviour(body='{"id": "chatcmpl-1", "choices": [{"index": 0}'))
    with (
        running_gateway(config) as gateway,
        openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", max_retries=0) as sdk,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        sdk.chat.completions.create(model="sim-model", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502
    assert "cut short" in caught.value.message


@pytest.mark.parametrize(
    ("error_type", "status"), [("server_error", None), ("overloaded_error", None), ("rate_limit_error", None)]
)
def test_an_error_object_as_first_stream_event_fails_over(
    gateway_url: str,
    simulator: ProviderSimulator,
    backup: ProviderSimulator,
    error_type: str,
    status: int | None,
) -> None:
    simulator.enqueue(Behaviour(error_after=0, error_type=error_type, error_message="busy, try later"))
    with openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="x", max_retries=0) as sdk:
        stream = sdk.chat.completions.create(
            model="sim-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.strip()  # the whole answer, from `b`
    assert len(simulator.chat_requests) == 1 and len(backup.chat_requests) == 1


def test_a_client_fault_error_object_as_first_event_is_answered_with_its_status(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    config = write_gateway_config(write_routes, {"a": provider(simulator.base_url)}, {"r": route("a", "a")})
    simulator.enqueue(
        Behaviour(error_after=0, error_type="invalid_request_error", error_message="context too long")
    )
    with (
        running_gateway(config) as gateway,
        openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", max_retries=0) as sdk,
        pytest.raises(openai.BadRequestError) as caught,
    ):
        sdk.chat.completions.create(
            model="sim-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    assert "context too long" in caught.value.message
    assert len(simulator.chat_requests) == 1  # the request's fault: not retried, not failed over


def test_three_streams_cut_mid_way_open_the_breaker(
    gateway_url: str, simulator: ProviderSimulator, backup: ProviderSimulator
) -> None:
    simulator.default = Behaviour(tokens=20, drop_after=4)
    with httpx.Client(base_url=gateway_url, timeout=CLIENT_TIMEOUT) as client:
        for _ in range(3):
            response = chat(client, stream=True)
            assert response.status_code == 200
            assert '"error"' in response.text and "[DONE]" not in response.text  # cut: an error event
        breaker = client.get("/health").json()["providers"]["a"]["circuit_breaker"]
        assert breaker["state"] == "open" and breaker["consecutive_failures"] == 3
        response = chat(client, stream=True)  # the breaker sends this one to `b`
        assert response.status_code == 200 and "[DONE]" in response.text
    assert len(simulator.chat_requests) == 3 and len(backup.chat_requests) == 1
