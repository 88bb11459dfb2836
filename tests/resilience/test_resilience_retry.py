"""Retries on one target over real sockets: backoff, Retry-After, deadline, what is never retried, and the
status and headers of the final answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.support.resilience_support import (
    attempts,
    chat,
    dead_url,
    gaps,
    provider,
    route,
)
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(60)

SLACK = 0.005  # seconds a timer may fire early by another clock


@pytest.fixture
def backup() -> Iterator[ProviderSimulator]:
    """A second simulator, for tests that check a failure did (or did not) move on."""
    with ProviderSimulator() as sim:
        yield sim


def test_503_503_200_succeeds_on_the_third_attempt_after_backoff(
    simulator: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    retry = {"attempts": 3, "backoff": {"base": 0.2, "max": 5, "jitter": False}}
    client = serve({"sim": provider(simulator.base_url)}, {"r": route("sim", retry=retry)})
    simulator.enqueue(Behaviour(status=503), Behaviour(status=503))

    response = chat(client)

    assert response.status_code == 200, response.text
    assert attempts(response) == 3
    assert response.headers["x-gateway-provider"] == "sim"
    upstream = simulator.chat_requests
    assert len(upstream) == 3
    first_gap, second_gap = gaps([request.received_at for request in upstream])
    # base * 2**retry; uvloop's timers run on the loop's cached clock, in whole milliseconds, so a sleep
    # can end up to ~1 ms early by the wall clock the simulator stamps with.
    assert first_gap >= 0.2 - SLACK and second_gap >= 0.4 - SLACK, (first_gap, second_gap)
    assert second_gap < 1.5
    # Every attempt carries the same request id upstream.
    assert len({request.headers["x-request-id"] for request in upstream}) == 1


def test_retry_after_one_second_delays_the_retry(
    simulator: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    retry = {"attempts": 2, "backoff": {"base": 0.01, "jitter": False}}
    client = serve({"sim": provider(simulator.base_url)}, {"r": route("sim", retry=retry)})
    simulator.enqueue(Behaviour(status=429, headers={"Retry-After": "1"}))

    response = chat(client)

    assert response.status_code == 200 and attempts(response) == 2
    (gap,) = gaps([request.received_at for request in simulator.chat_requests])
    assert 1.0 - SLACK <= gap < 2.0, gap


def test_retry_after_beyond_the_cap_fails_over_at_once(
    simulator: ProviderSimulator, backup: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    retry = {"attempts": 3, "retry_after_cap": 2}
    client = serve(
        {"a": provider(simulator.base_url), "b": provider(backup.base_url)},
        {"r": route("a", "b", retry=retry)},
    )
    simulator.enqueue(Behaviour(status=503, headers={"Retry-After": "30"}))

    started = time.monotonic()
    response = chat(client)

    assert response.status_code == 200
    assert time.monotonic() - started < 1.8  # a retry on a would first wait the 2 s cap
    assert response.headers["x-gateway-provider"] == "b" and attempts(response) == 2


def test_400_is_passed_through_without_retry_or_failover(
    simulator: ProviderSimulator, backup: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    retry = {"attempts": 3, "retry_on": [400, 429, 503]}  # a listed 4xx still is the request's fault
    client = serve(
        {"a": provider(simulator.base_url), "b": provider(backup.base_url)},
        {"r": route("a", "b", retry=retry)},
    )
    simulator.enqueue(Behaviour(status=400, error_message="bad temperature"))

    response = chat(client)

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "bad temperature"
    assert attempts(response) == 1 and response.headers["x-gateway-provider"] == "a"
    assert len(simulator.chat_requests) == 1 and backup.chat_requests == []


def test_exhausted_429_answers_429_as_received(
    simulator: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    retry = {"attempts": 2, "backoff": {"base": 0.01}}
    client = serve({"sim": provider(simulator.base_url)}, {"r": route("sim", retry=retry)})
    simulator.default = Behaviour(status=429, error_message="slow down", headers={"Retry-After": "0"})

    response = chat(client)

    assert response.status_code == 429
    assert response.json()["error"]["message"] == "slow down"
    assert response.headers["retry-after"] == "0"
    assert attempts(response) == 2 and response.headers["x-gateway-provider"] == "sim"
    assert response.headers["x-request-id"]


def test_connect_failure_everywhere_answers_502(serve: Callable[..., httpx.Client]) -> None:
    client = serve({"a": provider(dead_url()), "b": provider(dead_url())}, {"r": route("a", "b")})

    response = client.post(
        "/v1/chat/completions",
        json={"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-request-id": "req-connect-1"},
    )

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_connect_error"
    assert response.headers["x-request-id"] == "req-connect-1"
    assert response.headers["x-gateway-provider"] == "b" and attempts(response) == 2


def test_timeout_answers_504(simulator: ProviderSimulator, serve: Callable[..., httpx.Client]) -> None:
    client = serve({"sim": provider(simulator.base_url, timeouts={"read": 0.3})}, {"r": route("sim")})
    simulator.enqueue(Behaviour(head_delay=2.0))

    response = chat(client)

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert attempts(response) == 1


def test_deadline_bounds_the_whole_request(
    simulator: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    retry = {"attempts": 10, "backoff": {"base": 0.3, "max": 5, "jitter": False}, "deadline": 1.0}
    client = serve({"sim": provider(simulator.base_url)}, {"r": route("sim", retry=retry)})
    simulator.default = Behaviour(status=503)

    started = time.monotonic()
    response = chat(client)
    elapsed = time.monotonic() - started

    # Attempts at 0, 0.3 and 0.9 s; the next wait (1.2 s) would pass the deadline, so the 503 answers.
    assert response.status_code == 503
    assert attempts(response) == 3
    assert elapsed < 2.0, elapsed  # a 4th attempt would start at 2.1 s


def test_deadline_cuts_a_slow_attempt(
    simulator: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    client = serve({"sim": provider(simulator.base_url)}, {"r": route("sim", retry={"deadline": 0.5})})
    simulator.enqueue(Behaviour(head_delay=3.0))

    started = time.monotonic()
    response = chat(client)

    assert response.status_code == 504
    assert "request deadline" in response.json()["error"]["message"]
    assert time.monotonic() - started < 2.5  # the slow head would come at 3 s


def test_errors_before_any_attempt_say_so(
    serve: Callable[..., httpx.Client], simulator: ProviderSimulator
) -> None:
    client = serve({"sim": provider(simulator.base_url)}, {"r": route("sim")})

    response = client.post("/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user"}]})

    assert response.status_code == 404
    assert response.headers["x-gateway-attempts"] == "0"
    assert "x-gateway-provider" not in response.headers
    assert response.headers["x-request-id"]
