"""Limits over real sockets: exact request limits under concurrency (SQLite and Redis), one quota shared
by two gateway processes on one Redis, token limits from the upstream `usage` (streams too)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from gateway.access.keys import hash_secret
from tests.support.access_support import (
    CHAT_BODY,
    bearer,
    keyed_routes_yaml,
    ratelimit_headers,
    redis_prefix,
)
from tests.support.harness import CLIENT_TIMEOUT, gateway_process, running_gateway, sim_routes_yaml
from tests.support.redis_server import RedisServer
from tests.support.simulator import ProviderSimulator

TEAM_KEY = "sk-gw-quota-team-key"
TEAM_SECRET = hash_secret(TEAM_KEY)


@contextlib.contextmanager
def store_settings(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The `settings:` body for a SQLite file or a private Redis prefix (on the session's redis-server)."""
    if kind == "sqlite":
        yield f"stats_store: {tmp_path / 'usage.db'}\nstats_flush_interval: 0.05\n"
        return
    url = request.getfixturevalue("redis_server").url
    with redis_prefix(url) as prefix:
        yield f"stats_store: {url}\nstats_store_prefix: {prefix}\nstats_flush_interval: 0.05\n"


async def post_many(urls: list[str], key: str, body: dict[str, object] | None = None) -> list[httpx.Response]:
    """POST to every url at once (one connection each), return the responses in order."""
    limits = httpx.Limits(max_connections=len(urls), max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT, limits=limits) as client:
        return list(
            await asyncio.gather(
                *(client.post(url, json=body or CHAT_BODY, headers=bearer(key)) for url in urls)
            )
        )


@pytest.mark.parametrize("store", ["sqlite", "redis"])
async def test_200_concurrent_requests_against_50_per_minute(
    store: str, write_routes: Callable[..., Path], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    keys = f"team: {{secret: {TEAM_SECRET}, limits: {{requests_per_minute: 50}}}}\n"
    with store_settings(store, tmp_path, request) as settings:
        config_dir = write_routes(keyed_routes_yaml(keys, settings_yaml=settings))
        with running_gateway(config_dir) as gateway:
            url = f"{gateway.base_url}/v1/chat/completions"
            responses = await post_many([url] * 200, TEAM_KEY)
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 50 and statuses.count(429) == 150
    admitted = [response for response in responses if response.status_code == 200]
    # Every admitted request saw a different count: 49 left, 48 left, ... 0 left.
    assert sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in admitted) == list(range(50))
    refused = next(response for response in responses if response.status_code == 429)
    headers = ratelimit_headers(refused)
    assert headers["x-ratelimit-limit-requests"] == "50"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert re.fullmatch(r"(\d+m)?\d+(\.\d+)?s|\d+ms", headers["x-ratelimit-reset-requests"])
    assert 1 <= int(headers["retry-after"]) <= 60
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.json()["error"]["type"] == "requests"


async def test_two_gateway_processes_on_one_redis_share_the_limit(
    write_routes: Callable[..., Path], redis_server: RedisServer
) -> None:
    keys = f"team: {{secret: {TEAM_SECRET}, limits: {{requests_per_minute: 30}}}}\n"
    with redis_prefix(redis_server.url) as prefix:
        settings = f"stats_store: {redis_server.url}\nstats_store_prefix: {prefix}\n"
        config_dir = write_routes(keyed_routes_yaml(keys, settings_yaml=settings))
        with gateway_process(config_dir) as one, gateway_process(config_dir) as two:
            urls = [f"{(one, two)[index % 2].base_url}/v1/chat/completions" for index in range(100)]
            responses = await post_many(urls, TEAM_KEY)
            statuses = [response.status_code for response in responses]
            assert statuses.count(200) == 30 and statuses.count(429) == 70
            # Each process refuses on the shared count, whichever process admitted the requests.
            for gateway in (one, two):
                late = httpx.post(
                    f"{gateway.base_url}/v1/chat/completions",
                    json=CHAT_BODY,
                    headers=bearer(TEAM_KEY),
                    timeout=CLIENT_TIMEOUT,
                )
                assert late.status_code == 429
                assert late.headers["x-ratelimit-remaining-requests"] == "0"


def wait_for_status(send: Callable[[], httpx.Response], status: int, timeout: float = 5.0) -> httpx.Response:
    """Send until the answer has `status` (token spend lands with the next usage flush)."""
    deadline = time.monotonic() + timeout
    while True:
        response = send()
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


@pytest.mark.parametrize("stream", [False, True])
def test_token_limit_counts_upstream_usage(
    stream: bool, simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    """One answer of 40 completion tokens spends a 30 tokens/minute limit; the next request is 429
    `tokens`. For a stream the tokens come from the usage chunk the relay captured."""
    write_routes(sim_routes_yaml(simulator.base_url), "10-sim.yaml")
    keys = f"team: {{secret: {TEAM_SECRET}, limits: {{tokens_per_minute: 30, requests_per_minute: 100}}}}\n"
    config_dir = write_routes(
        keyed_routes_yaml(keys, settings_yaml="stats_flush_interval: 0.05\n"), "20.yaml"
    )
    body = {**CHAT_BODY, "model": "sim-model", "stream": stream, "x_sim": {"tokens": 40}}
    with (
        running_gateway(config_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        first = client.post("/v1/chat/completions", json=body, headers=bearer(TEAM_KEY))
        assert first.status_code == 200
        assert first.headers["x-ratelimit-limit-tokens"] == "30"
        assert first.headers["x-ratelimit-remaining-tokens"] == "30"  # nothing spent before it
        if stream:  # the client did not ask for usage: the gateway counted it and kept it to itself
            chunks = [
                orjson.loads(line[6:]) for line in first.text.splitlines() if line.startswith("data: {")
            ]
            assert chunks and all(chunk.get("usage") is None for chunk in chunks)
        answered = 1

        def send() -> httpx.Response:
            nonlocal answered
            response = client.post(
                "/v1/chat/completions", json={**body, "stream": False}, headers=bearer(TEAM_KEY)
            )
            answered += response.status_code == 200  # admitted before the first answer's usage landed
            return response

        refused = wait_for_status(send, 429)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["type"] == "tokens"
        assert refused.headers["x-ratelimit-remaining-tokens"] == "0"
        assert 50 <= int(refused.headers["retry-after"]) <= 60
        assert len(simulator.chat_requests) == answered  # refused requests never reach the provider


def test_the_sdk_raises_rate_limit_error(write_routes: Callable[..., Path]) -> None:
    keys = f"team: {{secret: {TEAM_SECRET}, limits: {{requests_per_minute: 1}}}}\n"
    with (
        running_gateway(write_routes(keyed_routes_yaml(keys))) as gateway,
        openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=TEAM_KEY, max_retries=0, timeout=10) as sdk,
    ):
        sdk.chat.completions.create(model="mock", messages=CHAT_BODY["messages"])
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.chat.completions.create(model="mock", messages=CHAT_BODY["messages"])
    assert caught.value.status_code == 429 and caught.value.code == "rate_limit_exceeded"
    assert int(caught.value.response.headers["retry-after"]) >= 1
