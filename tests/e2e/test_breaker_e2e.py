"""The circuit breaker over real sockets: it opens after N consecutive failures, skips the provider for the
cooldown, lets exactly one trial through, and closes again once the provider recovers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.harness import CLIENT_TIMEOUT, running_gateway
from tests.support.resilience_support import attempts, chat, provider, route, write_gateway_config
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(60)

COOLDOWN = 0.5


@pytest.fixture
def backup() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture
def client(
    simulator: ProviderSimulator, backup: ProviderSimulator, write_routes: Callable[..., Path]
) -> Iterator[httpx.Client]:
    """Gateway with route `a` (breaker: 2 failures, 0.5 s cooldown) then `b`."""
    breaker = {"failure_threshold": 2, "cooldown": COOLDOWN}
    providers = {"a": provider(simulator.base_url, circuit_breaker=breaker), "b": provider(backup.base_url)}
    config_dir = write_gateway_config(write_routes, providers, {"r": route("a", "b")})
    with (
        running_gateway(config_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as http,
    ):
        yield http


def provider_a(client: httpx.Client) -> dict[str, Any]:
    return client.get("/health").json()["providers"]["a"]


def test_breaker_opens_after_n_failures_and_closes_after_recovery(
    simulator: ProviderSimulator, client: httpx.Client
) -> None:
    simulator.default = Behaviour(status=503)

    failed_over = [chat(client) for _ in range(2)]
    assert [(r.status_code, r.headers["x-gateway-provider"], attempts(r)) for r in failed_over] == [
        (200, "b", 2),
        (200, "b", 2),
    ]
    health = provider_a(client)
    assert health["state"] == "unhealthy" and "circuit open after 2 consecutive failures" in health["reason"]
    assert health["circuit_breaker"]["state"] == "open"
    assert health["circuit_breaker"]["consecutive_failures"] == 2
    assert 0 < health["circuit_breaker"]["retry_in"] <= COOLDOWN

    skipped = chat(client)  # while open, a is not even tried
    assert skipped.headers["x-gateway-provider"] == "b" and attempts(skipped) == 1
    assert len(simulator.chat_requests) == 2
    assert client.get("/health").status_code == 200  # b still serves the route

    simulator.default = Behaviour()  # a recovers
    time.sleep(COOLDOWN + 0.05)
    assert provider_a(client)["circuit_breaker"]["state"] == "open"  # nothing has tried it yet
    assert provider_a(client)["state"] == "healthy"  # but routing would send the trial now

    trial = chat(client)
    assert trial.status_code == 200 and trial.headers["x-gateway-provider"] == "a" and attempts(trial) == 1
    health = provider_a(client)
    assert (
        health["circuit_breaker"]["state"] == "closed"
        and health["circuit_breaker"]["consecutive_failures"] == 0
    )
    assert health["state"] == "healthy" and health["reason"] is None


def test_a_failed_trial_reopens_the_circuit(simulator: ProviderSimulator, client: httpx.Client) -> None:
    simulator.default = Behaviour(status=503)
    for _ in range(2):
        chat(client)
    time.sleep(COOLDOWN + 0.05)

    trial = chat(client)  # a still fails: the trial goes to a, then fails over
    again = chat(client)

    assert trial.headers["x-gateway-provider"] == "b" and attempts(trial) == 2
    assert again.headers["x-gateway-provider"] == "b" and attempts(again) == 1
    assert len(simulator.chat_requests) == 3
    assert provider_a(client)["circuit_breaker"]["state"] == "open"


def test_half_open_lets_a_single_trial_through(simulator: ProviderSimulator, client: httpx.Client) -> None:
    simulator.default = Behaviour(status=503)
    for _ in range(2):
        chat(client)
    simulator.default = Behaviour(head_delay=0.4)  # recovered, but slow: the trial is still in flight
    time.sleep(COOLDOWN + 0.05)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: chat(client), range(4)))

    served_by = sorted(answer.headers["x-gateway-provider"] for answer in answers)
    assert served_by == ["a", "b", "b", "b"]
    assert provider_a(client)["circuit_breaker"]["state"] == "closed"


def test_a_client_error_does_not_count_against_the_provider(
    simulator: ProviderSimulator, client: httpx.Client
) -> None:
    simulator.default = Behaviour(status=400)

    answers = [chat(client) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [400, 400, 400]
    assert provider_a(client)["circuit_breaker"] == {
        "state": "closed",
        "consecutive_failures": 0,
        "failure_threshold": 2,
        "retry_in": None,
        "last_error": None,
    }
