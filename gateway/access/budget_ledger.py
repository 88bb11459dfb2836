"""Budgets counted in this process (the memory and SQLite stores): spend per slot and the holds in flight.

Like `LocalLimiter`, every method is synchronous and never awaits, so on the event loop the check and the
hold of one request happen with no other request in between: 200 concurrent requests against a budget
that fits 50 of them hold exactly 50. Holds are kept in arrival order, which is also their expiry order
(each lives `HOLD_SECONDS`), so dropping the expired ones costs nothing while none has expired.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gateway.access.budget_windows import (
    HOLD_SECONDS,
    BudgetState,
    BudgetVerdict,
    Period,
    judge,
    period,
    place,
    rolling_retry,
)
from gateway.config.budget_models import Budget, BudgetName

SpendRow = tuple[str, str, int, int]  # (key, place, slot, nano-units)


@dataclass(slots=True)
class _Hold:
    amount: int
    held: tuple[BudgetName, ...]
    expires_at: float


@dataclass(slots=True)
class _KeyBook:
    """One key's spend by place and slot, and its holds."""

    spend: dict[str, dict[int, int]] = field(default_factory=dict)
    holds: dict[str, _Hold] = field(default_factory=dict)  # arrival order = expiry order
    reserved: dict[BudgetName, int] = field(default_factory=dict)

    def expire(self, now: float) -> None:
        holds = self.holds
        while holds:
            hold_id, hold = next(iter(holds.items()))
            if hold.expires_at > now:
                return
            del holds[hold_id]
            self._release(hold)

    def release(self, hold_id: str) -> None:
        hold = self.holds.pop(hold_id, None)
        if hold is not None:
            self._release(hold)

    def _release(self, hold: _Hold) -> None:
        for name in hold.held:
            self.reserved[name] -= hold.amount

    def buckets(self, budget: Budget, window: Period) -> dict[int, int]:
        """The slots of `budget` still inside `window` (older ones are dropped here)."""
        slots = self.spend.setdefault(place(budget), {})
        for slot in [slot for slot in slots if slot < window.oldest]:
            del slots[slot]
        return slots

    def state(self, budget: Budget, now: float, amount: int) -> BudgetState:
        window = period(budget, now)
        slots = self.buckets(budget, window)
        reserved = self.reserved.get(budget.name, 0)
        if budget.name != "budget_per_window":
            spent = slots.get(window.slot, 0)
            return BudgetState(budget.name, budget.limit, spent, reserved, window.resets_at)
        spent = sum(slots.values())
        retry = rolling_retry(slots.items(), reserved, amount, budget.limit, window, now)
        resets_at = window.resets_at if retry is None else now + retry
        return BudgetState(budget.name, budget.limit, spent, reserved, resets_at)


class BudgetLedger:
    """Budgets per key name, in memory. Times are wall-clock epoch seconds (UTC days and months)."""

    __slots__ = ("_books", "_ids")

    def __init__(self) -> None:
        self._books: dict[str, _KeyBook] = {}
        self._ids = itertools.count(1)

    def _book(self, key: str) -> _KeyBook:
        book = self._books.get(key)
        if book is None:
            book = self._books[key] = _KeyBook()
        return book

    def check(self, key: str, budgets: Sequence[Budget], amount: int, now: float) -> BudgetVerdict:
        """Would a request of maximum cost `amount` fit? Changes nothing but dropping expired holds."""
        book = self._book(key)
        book.expire(now)
        return judge(budgets, [book.state(budget, now, amount) for budget in budgets], amount)

    def hold(self, key: str, verdict: BudgetVerdict, now: float) -> str:
        """Reserve `verdict.amount` against the budgets it fits (`verdict.held`); returns the hold's id."""
        book = self._book(key)
        hold_id = str(next(self._ids))
        book.holds[hold_id] = _Hold(verdict.amount, verdict.held, now + HOLD_SECONDS)
        for name in verdict.held:
            book.reserved[name] = book.reserved.get(name, 0) + verdict.amount
        return hold_id

    def settle(self, key: str, budgets: Sequence[Budget], hold_id: str | None, cost: int, at: float) -> None:
        """Replace the hold `hold_id` (None: the request had none) by the real `cost`, spent at `at`."""
        book = self._book(key)
        if hold_id is not None:
            book.release(hold_id)
        if cost:
            for budget in budgets:
                slot = period(budget, at).slot
                slots = book.spend.setdefault(place(budget), {})
                slots[slot] = slots.get(slot, 0) + cost

    def states(self, key: str, budgets: Sequence[Budget], now: float) -> list[BudgetState]:
        """Each budget of `key` now, for /stats."""
        book = self._book(key)
        book.expire(now)
        return [book.state(budget, now, 0) for budget in budgets]

    def load(self, rows: Iterable[SpendRow]) -> None:
        """Restore spend (key, place, slot, nano-units) read back after a restart."""
        for key, where, slot, nano in rows:
            slots = self._book(key).spend.setdefault(where, {})
            slots[slot] = slots.get(slot, 0) + nano
