"""Active health checks and `GET /health` over real sockets: probes flip a provider to unhealthy and back,
routing skips it meanwhile, panic mode when nothing is healthy, and the probes stop with the gateway."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.api.state import app_state
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway, wait_until
from tests.support.resilience_support import attempts, chat, provider, route, write_gateway_config
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(60)

FAST_CHECKS = {"interval": 0.05, "timeout": 1, "unhealthy_threshold": 2, "healthy_threshold": 2}


@pytest.fixture
def backup() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


def models_requests(sim: ProviderSimulator) -> int:
    return sum(1 for request in sim.requests if request.path.endswith("/models"))


def providers(client: httpx.Client) -> dict[str, Any]:
    return client.get("/health").json()["providers"]


def state_of(client: httpx.Client, name: str) -> str:
    return str(providers(client)[name]["state"])


@pytest.fixture
def gateway(
    simulator: ProviderSimulator, backup: ProviderSimulator, write_routes: Callable[..., Path]
) -> Iterator[tuple[RunningGateway, httpx.Client]]:
    """Route `r`: `a` (the simulator) then `b` (the backup), both probed every 50 ms."""
    config_dir = write_gateway_config(
        write_routes,
        {
            "a": provider(simulator.base_url, health_check=FAST_CHECKS),
            "b": provider(backup.base_url, health_check=FAST_CHECKS),
        },
        {"r": route("a", "b")},
    )
    with (
        running_gateway(config_dir) as running,
        httpx.Client(base_url=running.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        wait_until(lambda: providers(client)["a"]["health_check"]["status"] == "healthy", 5, "first probe")
        yield running, client


def test_health_checks_flip_a_provider_to_unhealthy_and_back(
    simulator: ProviderSimulator, gateway: tuple[RunningGateway, httpx.Client]
) -> None:
    _, client = gateway
    simulator.enqueue_models(*[Behaviour(status=500)] * 8)

    wait_until(lambda: state_of(client, "a") == "unhealthy", 5, "a never became unhealthy")
    report = client.get("/health")
    a = report.json()["providers"]["a"]
    assert report.status_code == 200  # b still serves the route
    assert a["reason"].startswith("health check failed 2 times in a row")
    assert "HTTP 500" in a["health_check"]["error"]
    assert a["health_check"]["last_check"] and a["health_check"]["latency_ms"] >= 0
    skipped = chat(client)
    assert skipped.headers["x-gateway-provider"] == "b" and attempts(skipped) == 1

    wait_until(lambda: state_of(client, "a") == "healthy", 5, "a never recovered")
    back = chat(client)
    assert back.headers["x-gateway-provider"] == "a"
    assert providers(client)["a"]["health_check"]["consecutive_successes"] >= 2


def test_all_unhealthy_is_panic_mode_and_health_answers_503(
    simulator: ProviderSimulator, backup: ProviderSimulator, gateway: tuple[RunningGateway, httpx.Client]
) -> None:
    _, client = gateway
    simulator.enqueue_models(*[Behaviour(status=503)] * 400)
    backup.enqueue_models(*[Behaviour(drop_before_head=True)] * 400)

    wait_until(lambda: client.get("/health").status_code == 503, 5, "/health never answered 503")
    report = client.get("/health").json()
    assert report["status"] == "unavailable" and report["unservable_routes"] == ["r"]
    assert {name: entry["state"] for name, entry in report["providers"].items()} == {
        "a": "unhealthy",
        "b": "unhealthy",
    }

    answer = chat(client)  # nothing healthy: tried in order anyway rather than failing fast

    assert answer.status_code == 200
    assert answer.headers["x-gateway-provider"] == "a" and attempts(answer) == 1


def test_shutdown_stops_the_probes(
    simulator: ProviderSimulator, backup: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    config_dir = write_gateway_config(
        write_routes, {"a": provider(simulator.base_url, health_check=FAST_CHECKS)}, {"r": route("a")}
    )
    with running_gateway(config_dir) as running:
        checker = app_state(running.app).running().health_checker
        assert checker.watched == ["a"]
        wait_until(lambda: models_requests(simulator) >= 3, 5, "probes did not run")

    assert checker.watched == []
    probes = models_requests(simulator)
    time.sleep(0.3)  # six probe intervals
    assert models_requests(simulator) == probes


def test_unavailable_provider_and_disabled_checks_are_reported(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    config_dir = write_gateway_config(
        write_routes,
        {
            "keyless": {
                "type": "openai",
                "base_url": simulator.base_url,
                "api_key": "${NOT_SET_ANYWHERE_42}",
            },
            "sim": provider(simulator.base_url),
        },
        {"r": route("keyless", model="keyless-model"), "s": route("sim")},
    )
    with (
        running_gateway(config_dir) as running,
        httpx.Client(base_url=running.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        report = client.get("/health")
        refused = chat(client, model="keyless-model")
        served = chat(client)

    body = report.json()
    assert report.status_code == 200
    keyless = body["providers"]["keyless"]
    assert keyless["state"] == "unavailable" and "NOT_SET_ANYWHERE_42" in keyless["reason"]
    assert keyless["health_check"]["enabled"] is False
    assert body["providers"]["sim"]["health_check"]["enabled"] is False
    assert body["providers"]["sim"]["state"] == "healthy"
    assert body["servable_routes"] == 1 and body["unservable_routes"] == ["r"]
    assert models_requests(simulator) == 0  # no probes for either
    assert served.status_code == 200
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "provider_unavailable"
    assert refused.headers["x-gateway-attempts"] == "0"
