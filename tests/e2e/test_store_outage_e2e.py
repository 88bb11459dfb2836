"""A Redis usage store that dies mid-run and comes back (the test runs its own redis-server and kills it):
`fail_closed` answers 503 `store_unavailable` at once, `fail_open` admits without limits; both apply limits
again within 2 s of Redis coming back; /health and /metrics show the outage; no request hangs."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.access.keys import hash_secret
from tests.support.access_support import bearer, keyed_routes_yaml
from tests.support.harness import free_port, running_gateway, wait_until
from tests.support.redis_server import NOT_INSTALLED, running_redis_server

KEY = "sk-gw-outage-team"
ADMIN = "sk-gw-outage-admin"
CHAT = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
QUICK = 3.0  # seconds: far above an answer's time, far below any hang


def routes(url: str, mode: str) -> str:
    keys = f"""\
    team:
      secret: {hash_secret(KEY)}
      limits: {{requests_per_minute: 1000}}
    admin:
      secret: {hash_secret(ADMIN)}
      role: admin
    """
    settings = (
        f"stats_store: {url}\nstats_store_prefix: outage\nstats_flush_interval: 0.05\n"
        f"store_failure_mode: {mode}\n"
    )
    return keyed_routes_yaml(keys, settings_yaml=settings)


def chat(client: httpx.Client) -> httpx.Response:
    started = time.monotonic()
    response = client.post("/v1/chat/completions", json=CHAT, headers=bearer(KEY))
    assert time.monotonic() - started < QUICK, "a request hung on the dead store"
    return response


@pytest.mark.parametrize("mode", ["fail_closed", "fail_open"])
def test_redis_killed_and_restarted(mode: str, write_routes: Callable[..., Path]) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(NOT_INSTALLED)
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis = contextlib.ExitStack()
    redis.enter_context(running_redis_server(binary, port))
    with (
        redis,
        running_gateway(write_routes(routes(url, mode))) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=10.0) as client,
    ):
        response = chat(client)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining-requests"] == "999"
        redis.close()  # Redis is gone; the gateway goes on
        for _ in range(20):
            response = chat(client)
            if mode == "fail_closed":
                assert response.status_code == 503
                error = response.json()["error"]
                assert (error["code"], error["type"]) == ("store_unavailable", "server_error")
                assert "usage store is unavailable" in error["message"]
                assert response.headers["retry-after"] == "1"
            else:
                assert response.status_code == 200
                assert "x-ratelimit-remaining-requests" not in response.headers  # admitted without limits
        health = client.get("/health").json()
        assert health["status"] == "ok"  # routing is fine: only keys with limits depend on the store
        assert health["store"]["state"] == "unavailable"
        assert health["store"]["failure_mode"] == mode
        assert health["store"]["requests_without_store"] == 20
        metrics = client.get("/metrics", headers=bearer(ADMIN)).text
        assert "gateway_store_available 0.0" in metrics
        assert "gateway_store_unavailable_total 20.0" in metrics
        stats = client.get("/stats", headers=bearer(ADMIN))  # says so in OpenAI's shape, fails nothing
        assert stats.status_code == 503 and stats.json()["error"]["code"] == "store_unavailable"

        redis.enter_context(running_redis_server(binary, port))  # back, empty (no persistence)
        recovered = wait_until(lambda: "x-ratelimit-remaining-requests" in chat(client).headers, timeout=2.0)
        assert recovered < 2.0
        assert client.get("/health").json()["store"]["state"] == "ok"
        assert "gateway_store_available 1.0" in client.get("/metrics", headers=bearer(ADMIN)).text
        assert client.get("/stats", headers=bearer(ADMIN)).status_code == 200
