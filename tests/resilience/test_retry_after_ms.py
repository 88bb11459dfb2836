"""`retry-after-ms` (milliseconds, OpenAI's and Azure's): read before Retry-After, as the OpenAI SDK does,
for the wait before a retry and for the cap; passed on to the client with an upstream 429. Unit tests of
the rules, then the running gateway in front of the simulator sending it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import httpx
import pytest

from gateway.config.models import Backoff, RetryPolicy
from gateway.errors import UpstreamStatusError
from gateway.resilience.retry import RetryRules, asked_wait, parse_retry_after_ms
from tests.support.resilience_support import attempts, chat, gaps, provider, route
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(60)

SLACK = 0.005  # seconds a timer may fire early by another clock


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "20"}, 0.25),  # ms first, as the OpenAI SDK
        ({"retry-after-ms": "1.5"}, 0.0015),
        ({"retry-after-ms": "0"}, 0.0),
        ({"retry-after-ms": "soon", "retry-after": "2"}, 2.0),  # unreadable ms: Retry-After decides
        ({"retry-after-ms": "-5", "retry-after": "2"}, 2.0),
        ({"retry-after-ms": "nan"}, None),
        ({"retry-after-ms": "inf"}, None),
        ({"retry-after": "3"}, 3.0),
        ({}, None),
    ],
)
def test_asked_wait(headers: dict[str, str], wait: float | None) -> None:
    assert asked_wait(headers) == (pytest.approx(wait) if wait is not None else None)


def test_parse_retry_after_ms_is_seconds() -> None:
    assert parse_retry_after_ms(" 1200 ") == pytest.approx(1.2)


def rules(cap: float = 30.0) -> RetryRules:
    policy = RetryPolicy(attempts=3, backoff=Backoff(base=5.0, max=5.0, jitter=False), retry_after_cap=cap)
    return RetryRules.from_policy(policy, random.Random(0))


def error(headers: dict[str, str]) -> UpstreamStatusError:
    return UpstreamStatusError(429, b"", headers=headers)


def test_wait_before_uses_the_milliseconds_and_caps_them() -> None:
    assert rules().wait_before(1, error({"retry-after-ms": "120", "retry-after": "9"})) == pytest.approx(0.12)
    # Over the cap: fail over instead of waiting (None), whatever Retry-After says.
    assert rules(cap=1.0).wait_before(1, error({"retry-after-ms": "1500", "retry-after": "0"})) is None
    assert rules().wait_before(1, error({})) == 5.0  # neither header: the backoff


def test_the_gateway_waits_the_milliseconds_not_the_seconds(
    simulator: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    retry = {"attempts": 2, "backoff": {"base": 5, "jitter": False}, "retry_after_cap": 30}
    client = serve({"sim": provider(simulator.base_url)}, {"r": route("sim", retry=retry)})
    simulator.enqueue(Behaviour(status=429, headers={"retry-after-ms": "300", "Retry-After": "20"}))

    started = time.monotonic()
    response = chat(client)

    assert response.status_code == 200 and attempts(response) == 2
    assert time.monotonic() - started < 4  # not Retry-After's 20 s, nor the 5 s backoff
    (gap,) = gaps([request.received_at for request in simulator.chat_requests])
    assert 0.3 - SLACK <= gap < 2.0, gap


def test_an_exhausted_429_passes_both_headers_on(
    simulator: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    retry = {"attempts": 1}
    client = serve({"sim": provider(simulator.base_url)}, {"r": route("sim", retry=retry)})
    simulator.enqueue(Behaviour(status=429, headers={"retry-after-ms": "1500", "Retry-After": "2"}))

    response = chat(client)

    assert response.status_code == 429
    assert response.headers["retry-after-ms"] == "1500" and response.headers["retry-after"] == "2"
