"""Shared fixtures: the provider simulator, route files pointing at it, and the real gateway in front.

Each fixture gives one thing and is named for it; the machinery lives in `tests.support.simulator` and
`tests.support.harness`, which tests may also use directly (e.g. two simulators, or a gateway subprocess).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.harness import (
    CLIENT_TIMEOUT,
    RunningGateway,
    running_gateway,
    sim_routes_yaml,
    write_config,
)
from tests.support.resilience_support import write_gateway_config
from tests.support.simulator import ProviderSimulator

# The session-scoped `redis_server` fixture (a private redis-server, or a skip when it is not installed).
pytest_plugins = ["tests.support.redis_server"]


@pytest.fixture
def simulator() -> Iterator[ProviderSimulator]:
    """A running provider simulator; on teardown it is stopped and checked for internal failures."""
    with ProviderSimulator() as sim:
        yield sim


@pytest.fixture
def write_routes(tmp_path: Path) -> Callable[..., Path]:
    """`write_routes(yaml_text, filename="routes.yaml") -> config dir` under this test's tmp_path."""

    def write(yaml_text: str, filename: str = "routes.yaml") -> Path:
        return write_config(tmp_path, yaml_text, filename)

    return write


@pytest.fixture
def sim_config_dir(simulator: ProviderSimulator, write_routes: Callable[..., Path]) -> Path:
    """A config dir with provider `sim` (the simulator) and route `sim-model` to it."""
    return write_routes(sim_routes_yaml(simulator.base_url))


@pytest.fixture
def sim_gateway(sim_config_dir: Path) -> Iterator[RunningGateway]:
    """The real gateway (uvicorn, free loopback port) configured with `sim_config_dir`."""
    with running_gateway(sim_config_dir) as gateway:
        yield gateway


@pytest.fixture
def gateway_client(sim_gateway: RunningGateway) -> Iterator[httpx.Client]:
    """An httpx client for `sim_gateway`, with the hang-guard timeouts."""
    with httpx.Client(base_url=sim_gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        yield client


@pytest.fixture
def openai_client(sim_gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    """The official OpenAI SDK pointed at `sim_gateway`: no SDK retries (they would hide the gateway's),
    hang-guard timeouts. Per-request faults: `extra_body={"x_sim": {...}}`."""
    with openai.OpenAI(
        base_url=f"{sim_gateway.base_url}/v1", api_key="client-key", timeout=CLIENT_TIMEOUT, max_retries=0
    ) as client:
        yield client


@pytest.fixture
def serve(write_routes: Callable[..., Path]) -> Iterator[Callable[..., httpx.Client]]:
    """`serve(providers, routes) -> client`: the gateway with that config (providers and routes as dicts,
    see tests/support/resilience_support.py), and an httpx client for it; several per test if needed."""
    with contextlib.ExitStack() as stack:

        def start(providers: dict[str, Any], routes: dict[str, Any]) -> httpx.Client:
            config_dir = write_gateway_config(write_routes, providers, routes)
            gateway = stack.enter_context(running_gateway(config_dir))
            return stack.enter_context(httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT))

        yield start
