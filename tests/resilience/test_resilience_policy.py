"""Retry rules (what retries, how long to wait) and the failover strategies, without any I/O."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from gateway.config.models import Backoff, RetryPolicy
from gateway.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamReadError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from gateway.resilience.retry import RetryRules, parse_retry_after
from gateway.resilience.strategy import TargetOrder, weighted_index


def rules(**policy: object) -> RetryRules:
    return RetryRules.from_policy(RetryPolicy(**policy), random.Random(7))  # type: ignore[arg-type]


def status(code: int, retry_after: str | None = None) -> UpstreamStatusError:
    headers = {"retry-after": retry_after} if retry_after is not None else {}
    return UpstreamStatusError(code, b'{"error": {"message": "x"}}', headers=headers)


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (status(429), True),
        (status(500), True),
        (status(503), True),
        (status(501), False),  # not in the default retry_on: passed through
        (status(400), False),
        (status(404), False),
        (UpstreamConnectError("refused"), True),
        (UpstreamTimeout("slow"), True),
        (UpstreamReadError("reset"), True),  # a connection broken before the answer fails over
        (UpstreamProtocolError("garbled"), True),  # read_error covers unreadable answers too
    ],
)
def test_default_retry_on(error: UpstreamError, retried: bool) -> None:
    assert rules().retries(error) is retried


def test_read_error_covers_unreadable_answers() -> None:
    r = rules(retry_on=("read_error",))
    assert r.retries(UpstreamReadError("reset"))
    assert r.retries(UpstreamProtocolError("closed before any event"))
    assert not r.retries(UpstreamTimeout("slow"))


def test_a_4xx_other_than_429_never_retries_even_when_listed() -> None:
    r = rules(retry_on=("400", "409", "429"))
    assert not r.retries(status(400))
    assert not r.retries(status(409))
    assert r.retries(status(429))


def test_backoff_without_jitter_doubles_up_to_max() -> None:
    r = rules(backoff=Backoff(base=0.5, max=3.0, jitter=False))
    assert [r.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_spreads_over_zero_to_the_ceiling() -> None:
    r = rules(backoff=Backoff(base=1.0, max=8.0, jitter=True))
    waits = [r.backoff(3) for _ in range(2000)]  # ceiling 4.0
    assert 0.0 <= min(waits) < 0.1 and 3.9 < max(waits) <= 4.0
    assert 1.8 < sum(waits) / len(waits) < 2.2  # uniform: mean is half the ceiling


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    r = rules(retry_after_cap=5.0, backoff=Backoff(base=0.1, jitter=False))
    assert r.wait_before(1, status(429, "2")) == 2.0
    assert r.wait_before(1, status(503, "5")) == 5.0
    assert r.wait_before(1, status(429, "6")) is None  # longer than the cap: fail over instead
    assert r.wait_before(1, status(429, "soon")) == 0.1  # unreadable: plain backoff
    assert r.wait_before(1, status(503)) == 0.1


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-4") == 0.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28.0 < (parse_retry_after(later) or 0) <= 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("nan") is None
    assert parse_retry_after("tomorrow") is None


# Strategies.


@dataclass(eq=False)
class FakeTarget:
    name: str
    weight: float = 1.0
    latency: float | None = None
    healthy: bool = True
    picks: list[float] = field(default_factory=list)

    def usable(self, now: float) -> bool:
        return self.healthy


def test_weighted_index_distribution_over_2000_picks() -> None:
    rng = random.Random(20260101)
    weights = [70.0, 20.0, 10.0]
    counts = Counter(weighted_index(weights, rng) for _ in range(2000))
    shares = [counts[i] / 2000 for i in range(3)]
    for share, weight in zip(shares, weights, strict=True):
        assert abs(share - weight / 100) < 0.03, shares


def test_weighted_order_distribution_over_2000_requests_unseeded() -> None:
    a, b = FakeTarget("a", weight=3), FakeTarget("b", weight=1)
    order = TargetOrder("weighted", [a, b])
    firsts = Counter(order(0.0)[0].name for _ in range(2000))
    assert abs(firsts["a"] / 2000 - 0.75) < 0.04, firsts  # 4.1 standard deviations


def test_weighted_order_keeps_the_rest_for_failover() -> None:
    a, b, c = FakeTarget("a", weight=0), FakeTarget("b", weight=1), FakeTarget("c", weight=0)
    assert [t.name for t in TargetOrder("weighted", [a, b, c])(0.0)] == ["b", "a", "c"]


def test_weighted_picks_only_among_usable_targets() -> None:
    a, b = FakeTarget("a", weight=99), FakeTarget("b", weight=1)
    a.healthy = False
    order = TargetOrder("weighted", [a, b], random.Random(1))
    assert {order(0.0)[0].name for _ in range(200)} == {"b"}
    b.healthy = False  # nothing usable: all of them, in order (panic mode decides)
    assert [t.name for t in order(0.0)] == ["a", "b"]


def test_round_robin_rotates() -> None:
    targets = [FakeTarget("a"), FakeTarget("b"), FakeTarget("c")]
    order = TargetOrder("round_robin", targets)
    assert ["".join(t.name for t in order(0.0)) for _ in range(4)] == ["abc", "bca", "cab", "abc"]


def test_least_latency_prefers_fast_and_measures_unknown_first() -> None:
    fast, slow, new = FakeTarget("fast", latency=0.05), FakeTarget("slow", latency=0.4), FakeTarget("new")
    order = TargetOrder("least_latency", [slow, fast, new])
    assert [t.name for t in order(0.0)] == ["new", "fast", "slow"]
    new.latency = 1.0
    assert [t.name for t in order(0.0)] == ["fast", "slow", "new"]


def test_ordered_costs_nothing_per_request() -> None:
    targets = [FakeTarget("a"), FakeTarget("b")]
    order = TargetOrder("ordered", targets)
    assert order(0.0) is order(0.0)  # the same prepared tuple every time
