"""The windows budgets are counted in, and what a budget check answers; shared by every store.

- `budget_per_day`: the UTC calendar day; spend of day N counts until the next UTC midnight.
- `budget_per_month`: the UTC calendar month (slot `year * 12 + month - 1`), until the 1st, 00:00 UTC.
- `budget_per_window`: a rolling window of `window` seconds, in 60 buckets of `window / 60` seconds: spend
  leaves it one bucket at a time, so it counts for between `window * 59/60` and `window` seconds.

A request fits a budget when `spent + reserved + its maximum cost <= limit`, all integers in nano-units;
`reserved` are the maximum costs of the requests in flight (holds). A hold expires after `HOLD_SECONDS`,
so the holds of a replica that died mid-request do not block the budget for ever.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.config.budget_models import Budget, BudgetName

DAY_SECONDS = 86400
BUCKETS_PER_WINDOW = 60
HOLD_SECONDS = 900  # a hold not settled within 15 minutes (a replica crashed) stops counting


@dataclass(frozen=True, slots=True)
class Period:
    """Where spend at a given time counts for one budget."""

    slot: int  # day number, month number, or the bucket index of that time (rolling)
    oldest: int  # rolling: the oldest bucket index still inside the window; calendar: == slot
    resets_at: float  # epoch seconds of the next calendar boundary; rolling: when the newest bucket leaves
    width: float = 0.0  # rolling: seconds per bucket


def place(budget: Budget) -> str:
    """Where a budget's spend is kept, by slot: `day`, `month`, or `window:<seconds>` (a window of another
    length has other buckets, so a reload that changes it starts that window afresh)."""
    if budget.name == "budget_per_window":
        return f"window:{budget.window}"
    return "day" if budget.name == "budget_per_day" else "month"


def period(budget: Budget, now: float) -> Period:
    """The period of `budget` that holds the instant `now` (epoch seconds, UTC)."""
    if budget.name == "budget_per_day":
        day = math.floor(now / DAY_SECONDS)
        return Period(day, day, float((day + 1) * DAY_SECONDS))
    if budget.name == "budget_per_month":
        return _month_of_day(math.floor(now / DAY_SECONDS))
    assert budget.window is not None  # the schema requires it
    width = budget.window / BUCKETS_PER_WINDOW
    index = math.floor(now / width)
    return Period(index, index - BUCKETS_PER_WINDOW + 1, (index + 1) * width + budget.window, width)


@functools.lru_cache(maxsize=64)
def _month_of_day(day: int) -> Period:
    """The month holding UTC day number `day` (memoised: a calendar lookup per day, not per request)."""
    moment = datetime.fromtimestamp(day * DAY_SECONDS, UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    slot = moment.year * 12 + moment.month - 1
    return Period(slot, slot, datetime(year, month, 1, tzinfo=UTC).timestamp())


def rolling_retry(
    buckets: Iterable[tuple[int, int]], reserved: int, amount: int, limit: int, window: Period, now: float
) -> float | None:
    """Seconds until spend leaving the window makes room for `amount`, or None when spend alone cannot
    (the holds in flight, or the amount itself, are in the way). `buckets`: (index, spent) in the window."""
    left = sum(spent for _, spent in buckets)
    for index, spent in sorted(buckets):
        left -= spent
        if left + reserved + amount <= limit:
            return max(0.0, (index + BUCKETS_PER_WINDOW) * window.width - now)
    return None


@dataclass(frozen=True, slots=True)
class BudgetState:
    """One budget as a check found it; amounts in nano-units."""

    name: BudgetName
    limit: int
    spent: int
    reserved: int  # holds in flight, before the checked request's own
    resets_at: float  # epoch seconds: when the checked request would fit again (refusal) / the period ends

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.spent - self.reserved)


@dataclass(frozen=True, slots=True)
class BudgetVerdict:
    """What the budgets of a key said about one request of maximum cost `amount`."""

    amount: int
    exceeded: BudgetState | None = None  # the enforced budget that refuses it (the one that frees last)
    would_block: tuple[BudgetName, ...] = ()  # shadow budgets it does not fit (not held against them)
    held: tuple[BudgetName, ...] = ()  # budgets its hold counts against (when it is admitted)
    tightest: BudgetState | None = None  # least remaining after its hold, for x-gateway-budget-remaining

    def remaining(self) -> int | None:
        """What the tightest budget has left once this request's hold is counted."""
        state = self.tightest
        if state is None:
            return None
        own = self.amount if state.name in self.held else 0
        return max(0, state.remaining - own)


def judge(budgets: Iterable[Budget], states: Iterable[BudgetState], amount: int) -> BudgetVerdict:
    """The verdict from each budget's state (same order as `budgets`). Pure: the local ledger calls it on
    its own counts; the Redis script does the same sums on the server (redis_store.py)."""
    exceeded: BudgetState | None = None
    would_block: list[BudgetName] = []
    held: list[BudgetName] = []
    tightest: tuple[int, BudgetState] | None = None
    for budget, state in zip(budgets, states, strict=True):
        fits = state.spent + state.reserved + amount <= state.limit
        if fits:
            held.append(budget.name)
        elif budget.shadow:
            would_block.append(budget.name)
        elif exceeded is None or state.resets_at > exceeded.resets_at:
            exceeded = state
        after = max(0, state.remaining - (amount if fits else 0))
        if tightest is None or after < tightest[0]:
            tightest = (after, state)
    if exceeded is not None:
        return BudgetVerdict(amount, exceeded, tightest=tightest[1] if tightest else None)
    return BudgetVerdict(amount, None, tuple(would_block), tuple(held), tightest[1] if tightest else None)
