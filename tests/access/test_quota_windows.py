"""Limit windows counted in process (the SQLite store's limiter), with a clock the test moves."""

from __future__ import annotations

import pytest

from gateway.access.keys import KeyLimits
from gateway.access.limits import Admission, LimitState, format_duration
from gateway.access.local_limiter import LocalLimiter


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_is_a_sliding_window() -> None:
    clock = Clock()
    limiter = LocalLimiter(clock)
    limits = KeyLimits(requests_per_minute=3)
    start = clock.now
    results = []
    for offset in (0, 10, 20, 30, 59.9, 60.0, 60.5, 70.0, 70.0):
        clock.now = start + offset
        results.append(limiter.admit("k", limits).allowed)
    # t=0,10,20 admitted; 30 and 59.9 refused; at 60 the t=0 entry has left the window; at 60.5 the
    # window still holds 10, 20, 60; at 70 the t=10 one has left (one slot), then full again.
    assert results == [True, True, True, False, False, True, False, True, False]


def test_refused_requests_do_not_use_up_the_window() -> None:
    clock = Clock()
    limiter = LocalLimiter(clock)
    limits = KeyLimits(requests_per_minute=1)
    assert limiter.admit("k", limits).allowed
    for _ in range(100):
        clock.now += 0.5
        assert not limiter.admit("k", limits).allowed
    clock.now += 10.0  # 60 s after the one admitted request
    assert limiter.admit("k", limits).allowed


def test_keys_have_separate_windows() -> None:
    limiter = LocalLimiter(Clock())
    limits = KeyLimits(requests_per_minute=1)
    assert limiter.admit("a", limits).allowed
    assert limiter.admit("b", limits).allowed
    assert not limiter.admit("a", limits).allowed


def test_request_state_and_retry_after() -> None:
    clock = Clock()
    limiter = LocalLimiter(clock)
    limits = KeyLimits(requests_per_minute=2)
    first = limiter.admit("k", limits)
    assert first.requests == LimitState(2, 1, 60.0)
    clock.now += 15
    assert limiter.admit("k", limits).requests == LimitState(2, 0, 60.0)
    clock.now += 5
    refused = limiter.admit("k", limits)
    assert not refused.allowed and refused.exceeded == "requests_per_minute"
    assert refused.retry_after == pytest.approx(40.0)  # the first request leaves the window at t=60
    assert refused.requests == LimitState(2, 0, pytest.approx(55.0))  # back to full when the newest leaves


def test_tokens_per_minute_refuses_once_spent_and_frees_by_bucket() -> None:
    clock = Clock(1_000_000.0)
    limiter = LocalLimiter(clock)
    limits = KeyLimits(tokens_per_minute=100)
    assert limiter.admit("k", limits).tokens == LimitState(100, 100, 0.0)
    limiter.spend("k", 60, clock.now)
    clock.now += 10
    limiter.spend("k", 50, clock.now)  # 110 spent: over (the overshoot of requests in flight)
    refused = limiter.admit("k", limits)
    assert not refused.allowed and refused.exceeded == "tokens_per_minute"
    assert refused.tokens is not None and refused.tokens.remaining == 0
    # Dropping the first 60 tokens (their 1 s bucket leaves the window 60 s after it) brings it under 100.
    assert refused.retry_after == pytest.approx(50.0)
    clock.now += 50
    admitted = limiter.admit("k", limits)
    assert admitted.allowed and admitted.tokens == LimitState(100, 50, pytest.approx(10.0))


def test_a_token_refusal_does_not_count_a_request() -> None:
    clock = Clock()
    limiter = LocalLimiter(clock)
    limits = KeyLimits(requests_per_minute=1, tokens_per_minute=10)
    limiter.spend("k", 10, clock.now)
    refused = limiter.admit("k", limits)
    assert refused.exceeded == "tokens_per_minute"
    assert refused.requests == LimitState(1, 1, 0.0)
    clock.now += 61
    assert limiter.admit("k", limits).allowed  # the request slot was never taken


def test_tokens_per_day_and_restore() -> None:
    clock = Clock(900.0 * 1000)  # on a 15-minute bucket boundary
    limiter = LocalLimiter(clock)
    limits = KeyLimits(tokens_per_day=1000, tokens_per_minute=5000)
    limiter.spend("k", 1000, clock.now)
    clock.now += 3600
    refused = limiter.admit("k", limits)
    assert refused.exceeded == "tokens_per_day"
    assert refused.retry_after == pytest.approx(86400 - 3600)
    assert refused.tokens is not None and refused.tokens.limit == 5000  # headers show the minute window

    restored = LocalLimiter(clock)
    restored.load([("k", 900.0 * 1000, 1000)])  # what the SQLite store reads back after a restart
    assert restored.admit("k", limits).exceeded == "tokens_per_day"
    clock.now += 86400 - 3600
    assert restored.admit("k", limits).allowed


def test_no_limits_means_no_state() -> None:
    admission = LocalLimiter(Clock()).admit("k", KeyLimits())
    assert admission == Admission(True)
    assert admission.headers() == {}


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0ms"),
        (0.0201, "21ms"),
        (1.0, "1s"),
        (1.5, "1.5s"),
        (59.9994, "59.999s"),
        (60.0, "1m0s"),
        (360.0, "6m0s"),
        (3723.25, "1h2m3.25s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_headers_and_error_of_a_refusal() -> None:
    admission = Admission(
        False,
        requests=LimitState(50, 0, 59.5),
        tokens=LimitState(1000, 200, 12.0),
        exceeded="requests_per_minute",
        retry_after=0.25,
    )
    error = admission.error("team-a", KeyLimits(requests_per_minute=50, tokens_per_minute=1000))
    assert error.status_code == 429 and error.code == "rate_limit_exceeded" and error.error_type == "requests"
    assert error.headers == {
        "x-ratelimit-limit-requests": "50",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "59.5s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "200",
        "x-ratelimit-reset-tokens": "12s",
        "retry-after": "1",  # whole seconds, rounded up, at least 1
        "retry-after-ms": "250",
    }
    assert "team-a" in error.message and "requests per minute: limit 50" in error.message
    tokens = Admission(False, exceeded="tokens_per_day", retry_after=7200.2)
    error = tokens.error("team-a", KeyLimits(tokens_per_day=9000))
    assert error.error_type == "tokens" and error.headers["retry-after"] == "7201"
    assert "tokens per day: limit 9000" in error.message
