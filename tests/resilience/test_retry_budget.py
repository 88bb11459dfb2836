"""The retry budget's two bounds: retries in flight within max(20% of requests in flight, 3), and retries
over the last minute within 20% of first attempts plus 3, the minute sliding second by second."""

from __future__ import annotations

from gateway.resilience.retry_budget import MIN_RETRIES, WINDOW, RetryBudget


def test_a_quiet_provider_gets_the_floor_of_three() -> None:
    budget = RetryBudget()
    budget.first_attempt(100.0)
    assert [budget.allows_retry(100.0) for _ in range(4)] == [True, True, True, False]
    assert budget.state()["retries_in_flight"] == 3


def test_retries_in_flight_are_bounded_by_a_fifth_of_the_requests_in_flight() -> None:
    budget = RetryBudget()
    for _ in range(1000):
        budget.first_attempt(5.0)  # a big history: the minute bound is far away
    budget.in_flight = 50
    granted = sum(budget.allows_retry(5.0) for _ in range(100))
    assert granted == 10  # 20% of 50 in flight
    budget.retry_ended()
    assert budget.allows_retry(5.0)  # one ended, one more may start
    assert not budget.allows_retry(5.0)


def test_retries_over_a_minute_stay_within_a_fifth_of_requests_plus_three() -> None:
    budget = RetryBudget()
    granted = 0
    for request in range(1000):
        now = 1000.0 + request / 100  # 100 requests/s for 10 s
        budget.first_attempt(now)
        if budget.allows_retry(now):
            granted += 1
            budget.retry_ended()  # each retry ends at once: only the minute bound holds them back
    assert granted == 200 + MIN_RETRIES


def test_the_minute_slides_and_an_idle_provider_starts_afresh() -> None:
    budget = RetryBudget()
    for _ in range(10):
        budget.first_attempt(0.5)
    while budget.allows_retry(0.5):
        budget.retry_ended()
    assert budget.state()["retries_last_minute"] == 2 + MIN_RETRIES
    assert not budget.allows_retry(WINDOW - 0.5)  # still within the minute
    assert budget.allows_retry(WINDOW + 0.5)  # second 0 left the window: its retries with it
    budget.retry_ended()
    assert budget.state()["requests_last_minute"] == 0
    budget.first_attempt(10 * WINDOW)  # long idle: the whole ring is stale
    assert budget.state() == {
        "in_flight": 0,
        "retries_in_flight": 0,
        "requests_last_minute": 1,
        "retries_last_minute": 0,
    }
