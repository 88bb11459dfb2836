"""Budget windows and arithmetic, in-process: UTC day and month periods, the rolling window, the verdict,
the maximum cost of a request, the local ledger's hold and settle, and the 429's words."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.access.budget_ledger import BudgetLedger
from gateway.access.budget_windows import (
    HOLD_SECONDS,
    BudgetState,
    judge,
    period,
    rolling_retry,
)
from gateway.access.budgets import budget_error, max_output_tokens, maximum_cost
from gateway.config.budget_models import Budget
from gateway.config.budgets import nano_amount
from gateway.config.models import RouteConfig, Target
from gateway.config.prices import Price, PriceTable
from gateway.routing.table import RouteMatch

DAY = Budget("budget_per_day", 5_000_000_000)
MONTH = Budget("budget_per_month", 100_000_000_000)
HOUR = Budget("budget_per_window", 2_500_000_000, window=3600)


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def test_a_day_runs_from_utc_midnight_to_utc_midnight() -> None:
    late, early = period(DAY, at(2026, 12, 2, 23, 59, 59)), period(DAY, at(2026, 12, 3, 0, 0, 0))
    assert early.slot == late.slot + 1
    assert late.resets_at == at(2026, 12, 3)


@pytest.mark.parametrize(
    ("moment", "resets"),
    [
        ((2026, 12, 31, 23, 0), (2027, 1, 1)),  # December into January
        ((2028, 2, 29, 12, 0), (2028, 3, 1)),  # a leap February
        ((2026, 1, 1, 0, 0), (2026, 2, 1)),
    ],
)
def test_a_month_ends_on_the_first_of_the_next_at_utc_midnight(
    moment: tuple[int, ...], resets: tuple[int, ...]
) -> None:
    window = period(MONTH, at(*moment))
    assert window.resets_at == at(*resets)
    assert period(MONTH, at(*resets)).slot == window.slot + 1


def test_a_rolling_window_has_sixty_buckets() -> None:
    now = 1_000_000.0
    window = period(HOUR, now)
    assert window.width == 60.0
    assert window.slot - window.oldest == 59
    assert window.slot == int(now // 60)


def test_rolling_retry_is_when_enough_spend_has_left() -> None:
    window = period(HOUR, 3600.0 * 100)
    buckets = [(window.oldest, 1_000), (window.oldest + 30, 1_000)]
    # The oldest bucket leaving makes room for 500 within a limit of 1500.
    wait = rolling_retry(buckets, 0, 500, 1_500, window, 3600.0 * 100)
    assert wait == pytest.approx((window.oldest + 60) * 60.0 - 3600.0 * 100)
    assert rolling_retry(buckets, 1_000, 600, 1_500, window, 3600.0 * 100) is None  # holds are in the way


def test_a_request_fits_when_spent_plus_held_plus_its_cost_is_at_most_the_limit() -> None:
    state = BudgetState("budget_per_day", 100, 60, 30, 0.0)
    assert judge([DAY], [state], 10).held == ("budget_per_day",)  # 60 + 30 + 10 = 100: fits exactly
    refused = judge([DAY], [state], 11)
    assert refused.exceeded == state and refused.held == ()


def test_a_shadow_budget_is_a_would_block_and_holds_nothing() -> None:
    shadow = Budget("budget_per_day", 100, shadow=True)
    verdict = judge([shadow, MONTH], [BudgetState("budget_per_day", 100, 95, 0, 0.0), _month(0)], 10)
    assert verdict.exceeded is None
    assert verdict.would_block == ("budget_per_day",)
    assert verdict.held == ("budget_per_month",)


def _month(spent: int) -> BudgetState:
    return BudgetState("budget_per_month", MONTH.limit, spent, 0, 0.0)


@pytest.mark.parametrize(
    ("written", "nano"), [(5, 5_000_000_000), ("2.5", 2_500_000_000), (0.000001, 1_000), (0.1, 100_000_000)]
)
def test_amounts_are_exact_integers_of_nano_units(written: float | str, nano: int) -> None:
    assert nano_amount(written) == nano


@pytest.mark.parametrize(
    ("body", "api", "expected"),
    [
        ({"max_completion_tokens": 7, "max_tokens": 9}, "openai.chat", 7),
        ({"max_tokens": 9}, "anthropic.messages", 9),
        ({"max_output_tokens": 11}, "openai.responses", 11),
        ({}, "openai.chat", 4096),
        ({"max_tokens": True}, "openai.completions", 4096),  # not a count
        ({"input": "x"}, "openai.embeddings", 0),
    ],
)
def test_max_output_tokens_per_api(body: dict[str, object], api: str, expected: int) -> None:
    assert max_output_tokens(body, api, 4096) == expected


def _match(*targets: Target) -> RouteMatch:
    return RouteMatch(RouteConfig(name="r", model="m", targets=targets), "exact", "m")


def test_the_maximum_cost_is_at_the_dearest_target_and_rounded_up() -> None:
    table = PriceTable(
        "USD",
        (
            Price("cheap", "m", input=1_000_000, output=2_000_000),  # 1 and 2 per million tokens
            Price("dear", "big", input=3_000_000, output=1_000_000, cache_write=4_000_000),
        ),
    )
    match = _match(Target("cheap"), Target("dear", model="big"))
    # dear: 10 prompt tokens at its dearest prompt price (cache writes, 4e6 pico) + 5 output at 1e6 pico.
    assert maximum_cost(table, match, 10, 5) == ((10 * 4_000_000 + 5 * 1_000_000) // 1000, "")
    # cheap alone: 1 prompt token at 1e6 pico = 1000 nano; 1 pico more rounds up.
    odd = PriceTable("USD", (Price("cheap", "m", input=1_000_001),))
    assert maximum_cost(odd, _match(Target("cheap")), 1, 0) == (1001, "")
    assert maximum_cost(table, _match(Target("cheap"), Target("nowhere")), 1, 1) == (None, "nowhere/m")


def test_the_ledger_holds_settles_and_expires() -> None:
    ledger = BudgetLedger()
    now = at(2026, 12, 2, 12)
    first = ledger.check("team", (DAY,), 3_000_000_000, now)
    hold = ledger.hold("team", first, now)
    assert ledger.check("team", (DAY,), 2_000_000_000, now).exceeded is None  # 3 + 2 = 5: fits
    assert ledger.check("team", (DAY,), 2_000_000_001, now).exceeded is not None
    ledger.settle("team", (DAY,), hold, 1_000_000_000, now)  # the real cost replaces the hold
    (state,) = ledger.states("team", (DAY,), now)
    assert (state.spent, state.reserved, state.remaining) == (1_000_000_000, 0, 4_000_000_000)
    ledger.settle("team", (DAY,), hold, 0, now)  # a second settle of the same hold releases nothing more
    assert ledger.states("team", (DAY,), now)[0].reserved == 0
    stale = ledger.hold("team", ledger.check("team", (DAY,), 4_000_000_000, now), now)
    assert stale and ledger.states("team", (DAY,), now)[0].reserved == 4_000_000_000
    # A hold nobody settled (a lost request) stops counting after HOLD_SECONDS.
    assert ledger.states("team", (DAY,), now + HOLD_SECONDS)[0].reserved == 0
    # The next UTC day starts afresh.
    assert ledger.states("team", (DAY,), at(2026, 12, 3))[0].spent == 0


def test_the_rolling_ledger_lets_spend_leave() -> None:
    ledger = BudgetLedger()
    start = 3600.0 * 1000
    ledger.settle("team", (HOUR,), None, HOUR.limit, start)
    refused = ledger.check("team", (HOUR,), 1, start + 10)
    assert refused.exceeded is not None
    assert refused.exceeded.resets_at == pytest.approx(start + 3600)  # the bucket of `start` leaves
    assert ledger.check("team", (HOUR,), 1, start + 3600).exceeded is None


def test_the_429_names_the_key_the_budget_and_when_it_resets() -> None:
    now = at(2026, 12, 2, 21)
    state = BudgetState("budget_per_day", 5_000_000_000, 4_990_000_000, 5_000_000, at(2026, 12, 3))
    error = budget_error("team", state, 20_000_000, "USD", {}, now)
    assert error.status_code == 429 and error.code == "budget_exceeded"
    assert "key 'team'" in error.message and "budget_per_day" in error.message
    assert "5.000000 USD" in error.message and "2026-12-03T00:00:00Z" in error.message
    assert error.headers["retry-after"] == "10800"
    assert error.headers["retry-after-ms"] == "10800000"
    assert error.headers["x-gateway-budget-remaining"] == "0.005000 USD"
    too_big = budget_error("team", state, 6_000_000_000, "USD", {}, now)
    assert "more than the whole budget" in too_big.message
