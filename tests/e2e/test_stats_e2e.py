"""GET /stats over real sockets: what it counts, and that SQLite usage survives a gateway restart."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.access.keys import hash_secret
from tests.support.access_support import CHAT_BODY, bearer, keyed_routes_yaml, redis_prefix
from tests.support.harness import CLIENT_TIMEOUT, gateway_process, running_gateway, sim_routes_yaml
from tests.support.simulator import Behaviour, ProviderSimulator

TEAM_KEY = "sk-gw-stats-team"
ADMIN_KEY = "sk-gw-stats-admin"
KEYS = f"""\
team: {{secret: {hash_secret(TEAM_KEY)}, models: [mock, sim-model]}}
admin: {{secret: {hash_secret(ADMIN_KEY)}, role: admin}}
"""


def stats(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/stats", headers=bearer(ADMIN_KEY), timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_stats_per_key_model_route_and_provider(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    write_routes(sim_routes_yaml(simulator.base_url), "10-sim.yaml")
    config_dir = write_routes(keyed_routes_yaml(KEYS), "20-keys.yaml")
    simulator.enqueue(Behaviour(), Behaviour(), Behaviour(status=500))
    sim_body = {**CHAT_BODY, "model": "sim-model"}
    with (
        running_gateway(config_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        team = bearer(TEAM_KEY)
        assert client.post("/v1/chat/completions", json=sim_body, headers=team).status_code == 200
        streamed = client.post("/v1/chat/completions", json={**sim_body, "stream": True}, headers=team)
        assert streamed.status_code == 200
        assert client.post("/v1/chat/completions", json=sim_body, headers=team).status_code == 500
        assert client.post("/v1/chat/completions", json=CHAT_BODY, headers=team).status_code == 200
        assert (
            client.post(
                "/v1/chat/completions", json={**CHAT_BODY, "model": "other"}, headers=team
            ).status_code
            == 403
        )
        assert client.post("/v1/chat/completions", json=CHAT_BODY).status_code == 401
        result = stats(gateway.base_url)

    assert result["object"] == "gateway.stats" and result["store"] == "sqlite::memory:"
    team_stats = result["by_key"]["team"]
    assert team_stats["fingerprint"] == hash_secret(TEAM_KEY)[7:15]
    assert (team_stats["requests"], team_stats["errors"]) == (5, 2)  # the 500 and the 403
    assert result["by_key"]["(no key)"]["requests"] == 1
    sim = result["by_provider"]["sim"]
    assert (sim["requests"], sim["errors"]) == (3, 1)
    # The simulator's usage: one prompt token per word, one completion token per piece; the stream's
    # usage chunk was captured by the relay.
    assert sim["prompt_tokens"] == 2 and sim["completion_tokens"] > 0
    assert result["by_route"]["sim-model"]["requests"] == 3
    assert result["by_model"]["mock"]["requests"] == 1 and result["by_model"]["other"]["errors"] == 1
    latency = sim["latency"]
    assert latency["mean_ms"] is not None
    assert 0 < latency["min_ms"] <= latency["p50_ms"] <= latency["max_ms"]
    assert result["totals"]["requests"] == 6


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_usage_survives_a_restart(
    store: str, write_routes: Callable[..., Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two lives of a gateway process on one store. The flush interval is long, so the last requests of
    the first life reach the store only through its shutdown flush."""
    with contextlib.ExitStack() as stack:
        if store == "sqlite":
            settings = f"stats_store: {tmp_path / 'state' / 'usage.db'}\nstats_flush_interval: 30\n"
        else:  # only the Redis case needs (or skips for) the session's redis-server
            url = request.getfixturevalue("redis_server").url
            prefix = stack.enter_context(redis_prefix(url))
            settings = f"stats_store: {url}\nstats_store_prefix: {prefix}\nstats_flush_interval: 30\n"
        config_dir = write_routes(keyed_routes_yaml(KEYS, settings_yaml=settings))
        with gateway_process(config_dir) as gateway:
            send(gateway.base_url, 3)
            assert stats(gateway.base_url)["by_key"]["team"]["requests"] == 3  # /stats flushes first
            send(gateway.base_url, 2)  # recorded in memory only: the next flush is 30 s away
        with gateway_process(config_dir) as gateway:
            before = stats(gateway.base_url)["by_key"]["team"]  # nothing sent in this life yet
            send(gateway.base_url, 1)
            after = stats(gateway.base_url)["by_key"]["team"]
    assert before["requests"] == 5 and before["completion_tokens"] == 5 * 4  # the mock answers 4 tokens
    assert before["latency"]["max_ms"] is not None
    assert after["requests"] == 6


def send(base_url: str, count: int) -> None:
    for _ in range(count):
        response = httpx.post(
            f"{base_url}/v1/chat/completions",
            json=CHAT_BODY,
            headers=bearer(TEAM_KEY),
            timeout=CLIENT_TIMEOUT,
        )
        assert response.status_code == 200
