"""A retry storm is bounded: a target answering 503 to 1,000 requests at 100 requests/s, with three
attempts per request allowed, sees at most 1.2 x 1,000 + 3 attempts (the retry budget), not 3,000."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.harness import running_gateway
from tests.support.resilience_support import MODEL, provider, route, write_gateway_config
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(120)

REQUESTS = 1000
RATE = 100.0  # requests per second


async def test_a_failing_target_sees_at_most_a_fifth_more_attempts(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    simulator.default = Behaviour(status=503)
    retry = {"attempts": 3, "backoff": {"base": 0.01, "max": 0.05}}
    config = write_gateway_config(
        write_routes, {"a": provider(simulator.base_url, retry=retry)}, {"r": route("a")}
    )
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    with running_gateway(config) as gateway:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30.0, limits=limits) as client:

            async def one(delay: float) -> tuple[int, int]:
                await asyncio.sleep(delay)
                response = await client.post("/v1/chat/completions", json=body)
                return response.status_code, int(response.headers["x-gateway-attempts"])

            answers = await asyncio.gather(*(one(index / RATE) for index in range(REQUESTS)))
            health = (await client.get("/health")).json()["providers"]["a"]
    assert {status for status, _ in answers} == {503}
    attempts = len(simulator.chat_requests)
    assert attempts == sum(count for _, count in answers)
    assert attempts <= 1.2 * REQUESTS + 3, f"{attempts} attempts for {REQUESTS} requests"
    assert attempts > REQUESTS + 100  # retries do happen, within the budget
    budget = health["retry_budget"]
    assert budget["retries_in_flight"] == 0 and budget["in_flight"] == 0  # nothing leaked
    # Retries taken from the budget: those sent, and any the breaker held back after their backoff.
    assert attempts - REQUESTS <= budget["retries_last_minute"] <= 0.2 * REQUESTS + 3
