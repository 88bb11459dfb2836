"""The one interface every usage store implements (SQLite in `sqlite_store`, Redis in `redis_store`).

A store answers two questions on different clocks:

- `admit(key, limits)`: on the request path, before dispatch. It must be exact for request limits, so it
  checks and counts in one atomic step (the event loop for SQLite, a Lua script for Redis).
- `commit(batch)`: in the background, every `stats_flush_interval`. Usage counters and token spend are
  added up in memory by `UsageRecorder` and written in one batch, so no request waits on a disk write.
  Budget settlements ride in the same batch, so settling adds no round trip of its own: Redis replaces a
  request's hold by its real cost at the next flush (the hold counts until then: never less); stores
  that count in this process settle at once (`settle`) and only persist the spend in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from gateway.access.budget_windows import BudgetState
from gateway.access.keys import KeyLimits
from gateway.access.limits import Admission
from gateway.access.usage import UsageCounters, UsageKey
from gateway.config.budget_models import Budget


class StoreUnavailable(Exception):
    """The store could not answer (connection lost, timeout); the message holds no credentials."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """A finished request of a key with budgets: its hold (None: it had none, e.g. admitted while the
    store was down) is replaced by its real `cost` (nano-units), spent at `at` (epoch seconds)."""

    key: str
    budgets: tuple[Budget, ...]
    hold_id: str | None
    cost: int
    at: float


@dataclass(slots=True)
class UsageBatch:
    """What happened since the last commit."""

    rows: dict[UsageKey, UsageCounters] = field(default_factory=dict)
    # (key name, whole second) -> tokens spent, for keys with token limits.
    spend: dict[tuple[str, int], int] = field(default_factory=dict)
    settlements: list[Settlement] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.rows or self.spend or self.settlements)

    def merge(self, other: UsageBatch) -> None:
        for row, counters in other.rows.items():
            mine = self.rows.get(row)
            if mine is None:
                self.rows[row] = counters
            else:
                mine.merge(counters)
        for slot, tokens in other.spend.items():
            self.spend[slot] = self.spend.get(slot, 0) + tokens
        self.settlements.extend(other.settlements)


class UsageStore(Protocol):
    description: str  # for logs and /stats; never holds credentials

    async def open(self) -> None: ...

    async def admit(self, key: str, limits: KeyLimits, amount: int | None = None) -> Admission:
        """Check and count a request; with `amount` (its maximum cost, nano-units) also check the key's
        budgets and hold it against them, in the same atomic step."""
        ...

    def settle(self, settlement: Settlement) -> None:
        """At a request's end, synchronously and without I/O: what the store counts in this process
        takes the settlement at once; what it keeps elsewhere waits for `commit` (the settlement is
        also in the recorder's batch)."""
        ...

    async def read_budgets(self, key: str, budgets: tuple[Budget, ...]) -> list[BudgetState]: ...

    async def commit(self, batch: UsageBatch) -> None: ...

    async def read_usage(self) -> dict[UsageKey, UsageCounters]: ...

    async def prune(self, before_day: str) -> int:
        """Delete the usage rows of UTC days before `before_day` (YYYY-MM-DD; rows without a day, written
        before days were kept, stay); the number deleted."""
        ...

    async def aclose(self) -> None: ...
