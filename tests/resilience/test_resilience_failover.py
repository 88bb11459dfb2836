"""Failover across targets over real sockets: connection refused, timeouts (read, first byte, total), the
first-byte commit point of streams, and the strategies' distribution."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.support.resilience_support import (
    MODEL,
    attempts,
    chat,
    dead_url,
    provider,
    route,
)
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.sse_reader import iter_sse

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def backup() -> Iterator[ProviderSimulator]:
    with ProviderSimulator() as sim:
        yield sim


def stream_events(client: httpx.Client, **body: Any) -> tuple[httpx.Response, list[Any]]:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True, **body}
    with client.stream("POST", "/v1/chat/completions", json=payload) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        events = list(iter_sse(response))
    return response, events


def test_connection_refused_on_the_primary_is_served_by_the_secondary(
    backup: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    client = serve({"a": provider(dead_url()), "b": provider(backup.base_url)}, {"r": route("a", "b")})

    answer = chat(client)
    streamed, events = stream_events(client)

    assert answer.status_code == 200, answer.text
    assert answer.headers["x-gateway-provider"] == "b" and attempts(answer) == 2
    assert streamed.status_code == 200
    assert streamed.headers["x-gateway-provider"] == "b" and attempts(streamed) == 2
    assert events[-1].is_done
    assert len(backup.chat_requests) == 2


def test_read_timeout_triggers_failover(
    simulator: ProviderSimulator, backup: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    client = serve(
        {"a": provider(simulator.base_url, timeouts={"read": 0.3}), "b": provider(backup.base_url)},
        {"r": route("a", "b")},
    )
    simulator.enqueue(Behaviour(head_delay=3.0), Behaviour(head_delay=3.0))

    started = time.monotonic()
    answer = chat(client)
    streamed, events = stream_events(client)
    elapsed = time.monotonic() - started

    assert answer.status_code == 200 and answer.headers["x-gateway-provider"] == "b"
    assert streamed.status_code == 200 and streamed.headers["x-gateway-provider"] == "b"
    assert events[-1].is_done
    assert elapsed < 2.5, elapsed  # waiting for a (3 s heads) would take longer


def test_first_byte_timeout_fails_over_a_stream_whose_first_token_is_late(
    simulator: ProviderSimulator, backup: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    # The head comes at once, the first event only after 3 s: read (10 s) would wait, first_byte does not.
    client = serve(
        {"a": provider(simulator.base_url), "b": provider(backup.base_url)},
        {"r": route("a", "b", timeouts={"read": 10, "first_byte": 0.4})},
    )
    simulator.enqueue(Behaviour(pause_after=0, pause=3.0))

    started = time.monotonic()
    streamed, events = stream_events(client)

    assert streamed.status_code == 200 and streamed.headers["x-gateway-provider"] == "b"
    assert attempts(streamed) == 2 and events[-1].is_done
    assert time.monotonic() - started < 2.5  # waiting for a's first event would take 3 s
    simulator.wait_for(lambda: simulator.chat_requests[0].outcome == "client_closed")


def test_a_stream_that_fails_after_its_first_event_is_not_retried(
    simulator: ProviderSimulator, backup: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    retry = {"attempts": 3, "retry_on": [503, "connect_error", "timeout", "read_error"]}
    client = serve(
        {"a": provider(simulator.base_url), "b": provider(backup.base_url)},
        {"r": route("a", "b", retry=retry)},
    )
    simulator.enqueue(Behaviour(tokens=5, drop_after=2))

    streamed, events = stream_events(client)

    assert streamed.status_code == 200
    assert streamed.headers["x-gateway-provider"] == "a" and attempts(streamed) == 1
    assert [event.json()["choices"][0]["delta"] for event in events[:2]] == [
        {"role": "assistant", "content": ""},
        {"content": "word0 "},
    ]
    assert "error" in events[-1].json()  # the failure is the stream's last event, not an HTTP error
    assert not any(event.is_done for event in events)
    assert len(simulator.chat_requests) == 1 and backup.chat_requests == []


def test_total_timeout_ends_a_slow_stream_with_an_error_event(
    simulator: ProviderSimulator, backup: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    client = serve(
        {"a": provider(simulator.base_url), "b": provider(backup.base_url)},
        {"r": route("a", "b", timeouts={"total": 0.6})},
    )
    simulator.enqueue(Behaviour(tokens=50, token_delay=0.1))

    started = time.monotonic()
    streamed, events = stream_events(client)

    assert streamed.status_code == 200 and attempts(streamed) == 1
    assert 3 <= len(events) < 50
    error = events[-1].json()["error"]
    assert error["code"] == "upstream_timeout" and "total timeout of 0.6s" in error["message"]
    assert time.monotonic() - started < 3.0  # the whole stream would take 5 s
    assert backup.chat_requests == []


def test_weighted_distribution_over_2000_requests(
    simulator: ProviderSimulator, backup: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    client = serve(
        {"a": provider(simulator.base_url), "b": provider(backup.base_url)},
        {
            "r": {
                "model": MODEL,
                "strategy": "weighted",
                "targets": [{"provider": "a", "weight": 3}, {"provider": "b", "weight": 1}],
            }
        },
    )
    with ThreadPoolExecutor(4) as pool:  # four clients at once: the picker sees concurrent requests too
        answers = list(pool.map(lambda _: chat(client, x_sim={"tokens": 1}), range(2000)))
    assert {answer.status_code for answer in answers} == {200}
    served = Counter(answer.headers["x-gateway-provider"] for answer in answers)

    assert abs(served["a"] / 2000 - 0.75) < 0.04, served  # 4 standard deviations
    assert served["a"] == len(simulator.chat_requests) and served["b"] == len(backup.chat_requests)


def test_round_robin_alternates(
    simulator: ProviderSimulator, backup: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    client = serve(
        {"a": provider(simulator.base_url), "b": provider(backup.base_url)},
        {"r": route("a", "b", strategy="round_robin")},
    )

    order = [chat(client).headers["x-gateway-provider"] for _ in range(6)]

    assert order == ["a", "b", "a", "b", "a", "b"]


def test_least_latency_settles_on_the_faster_target(
    simulator: ProviderSimulator, backup: ProviderSimulator, serve: Callable[..., httpx.Client]
) -> None:
    client = serve(
        {"slow": provider(simulator.base_url), "fast": provider(backup.base_url)},
        {"r": route("slow", "fast", strategy="least_latency")},
    )
    simulator.default = Behaviour(head_delay=0.15)

    order = [chat(client).headers["x-gateway-provider"] for _ in range(10)]

    assert set(order[:2]) == {"slow", "fast"}  # both unmeasured at first: each gets measured
    assert order[2:] == ["fast"] * 8
