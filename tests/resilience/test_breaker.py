"""The circuit breaker's state machine, driven with an explicit clock."""

from __future__ import annotations

from gateway.config.models import CircuitBreaker
from gateway.resilience.breaker import Breaker


def breaker(threshold: int = 3, cooldown: float = 10.0) -> Breaker:
    return Breaker(CircuitBreaker(failure_threshold=threshold, cooldown=cooldown))


def test_opens_after_threshold_consecutive_failures() -> None:
    b = breaker(threshold=3)
    for now in (1.0, 2.0):
        b.record_failure(now, "boom")
        assert b.state == "closed" and b.acquire(now)
    b.record_failure(3.0, "boom")
    assert b.state == "open"
    assert b.failures == 3 and b.last_error == "boom"
    assert not b.allows(3.0) and not b.acquire(12.9)
    assert b.retry_in(5.0) == 8.0


def test_a_success_resets_the_count() -> None:
    b = breaker(threshold=2)
    b.record_failure(1.0, "boom")
    b.record_success()
    b.record_failure(2.0, "boom")
    assert b.state == "closed"


def test_half_open_lets_exactly_one_trial_through() -> None:
    b = breaker(threshold=1, cooldown=5.0)
    b.record_failure(0.0, "boom")
    assert b.allows(5.0)  # asking has no side effect
    assert b.state == "open"
    assert b.acquire(5.0)
    assert b.state == "half_open"
    assert not b.allows(5.1) and not b.acquire(5.1)  # the trial is in flight


def test_successful_trial_closes() -> None:
    b = breaker(threshold=1, cooldown=5.0)
    b.record_failure(0.0, "boom")
    assert b.acquire(6.0)
    b.record_success()
    assert b.state == "closed" and b.failures == 0
    assert b.acquire(6.0) and b.acquire(6.0)


def test_failed_trial_reopens_for_a_new_cooldown() -> None:
    b = breaker(threshold=1, cooldown=5.0)
    b.record_failure(0.0, "boom")
    assert b.acquire(6.0)
    b.record_failure(6.5, "again")
    assert b.state == "open" and not b.acquire(11.0)
    assert b.acquire(11.5)


def test_released_trial_frees_the_slot() -> None:
    b = breaker(threshold=1, cooldown=5.0)
    b.record_failure(0.0, "boom")
    assert b.acquire(6.0)
    b.release()
    assert b.state == "half_open" and b.acquire(6.1)
