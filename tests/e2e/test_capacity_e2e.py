"""Capacity toward a provider, through the real gateway: a cap that is reached answers 503
`upstream_capacity` fast (within `acquire_timeout`), and a route with a second target fails over to it.

The upstream streams slowly, so each stream holds its connection (or concurrency slot) for its whole
length: 30 streams at once against a cap of 10.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.harness import running_gateway
from tests.support.resilience_support import MODEL, provider, route, write_gateway_config
from tests.support.simulator import Behaviour, ProviderSimulator

STREAMS = 30
CAP = 10
WAIT = 0.5  # acquire_timeout
SLOW = Behaviour(tokens=4, token_delay=0.5)  # ~2 s a stream: all 30 overlap


async def one_stream(client: httpx.AsyncClient) -> tuple[int, str | None, float, str | None]:
    """(status, error code, seconds to the answer's head, provider that served)."""
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    started = time.perf_counter()
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        head_at = time.perf_counter() - started
        content = await response.aread()
    code = None
    if response.status_code != 200:
        code = httpx.Response(response.status_code, content=content).json()["error"]["code"]
    else:
        assert content.endswith(b"data: [DONE]\n\n")
    return response.status_code, code, head_at, response.headers.get("x-gateway-provider")


async def run_streams(base_url: str) -> list[tuple[int, str | None, float, str | None]]:
    limits = httpx.Limits(max_connections=STREAMS + 5)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        return list(await asyncio.gather(*(one_stream(client) for _ in range(STREAMS))))


@pytest.mark.parametrize(
    "pool",
    [
        {"max_connections": CAP, "acquire_timeout": WAIT},
        {"max_concurrent_requests": CAP, "acquire_timeout": WAIT},
    ],
    ids=["max_connections", "max_concurrent_requests"],
)
async def test_a_full_provider_answers_503_upstream_capacity_at_once(
    pool: dict[str, Any], write_routes: Callable[..., Path]
) -> None:
    with ProviderSimulator(default=SLOW) as sim:
        config = write_gateway_config(
            write_routes, {"sim": provider(sim.base_url, pool=pool)}, {"chat": route("sim")}
        )
        with running_gateway(config) as gateway:
            results = await run_streams(gateway.base_url)
    served = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    assert len(served) == CAP
    assert len(refused) == STREAMS - CAP
    assert {(status, code) for status, code, _, _ in refused} == {(503, "upstream_capacity")}
    # Refused within the bounded wait (plus 100 ms), not after a connect timeout or the streams' 2 s.
    assert max(head_at for _, _, head_at, _ in refused) < WAIT + 0.1 + 0.4  # 0.4: a busy 2-core machine
    assert min(head_at for _, _, head_at, _ in refused) >= WAIT * 0.9
    assert len(sim.chat_requests) == CAP  # nothing beyond the cap reached the upstream


async def test_with_a_second_target_every_stream_is_served(write_routes: Callable[..., Path]) -> None:
    with ProviderSimulator(default=SLOW) as first, ProviderSimulator(default=SLOW) as second:
        providers = {
            "first": provider(first.base_url, pool={"max_connections": CAP, "acquire_timeout": WAIT}),
            "second": provider(second.base_url),
        }
        config = write_gateway_config(write_routes, providers, {"chat": route("first", "second")})
        with running_gateway(config) as gateway:
            results = await run_streams(gateway.base_url)
            async with httpx.AsyncClient(base_url=gateway.base_url) as client:
                metrics = (await client.get("/metrics")).text
                health = (await client.get("/health")).json()
    assert [r[0] for r in results] == [200] * STREAMS
    by_provider = [r[3] for r in results]
    assert (by_provider.count("first"), by_provider.count("second")) == (CAP, STREAMS - CAP)
    assert len(first.chat_requests) == CAP and len(second.chat_requests) == STREAMS - CAP
    # The pool is visible: a gauge per provider in /metrics, and the same numbers in /health.
    assert 'gateway_provider_connections{provider="first",state="idle"}' in metrics
    assert 'gateway_provider_connections{provider="first",state="waiting"} 0.0' in metrics
    pool = health["providers"]["first"]["pool"]
    assert set(pool) == {"in_use", "idle", "waiting"}
    assert (pool["in_use"], pool["waiting"]) == (0, 0) and 0 < pool["idle"] <= CAP
