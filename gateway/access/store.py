"""The one interface every usage store implements (SQLite in `sqlite_store`, Redis in `redis_store`).

A store answers two questions on different clocks:

- `admit(key, limits)`: on the request path, before dispatch. It must be exact for request limits, so it
  checks and counts in one atomic step (the event loop for SQLite, a Lua script for Redis).
- `commit(batch)`: in the background, every `stats_flush_interval`. Usage counters and token spend are
  added up in memory by `UsageRecorder` and written in one batch, so no request waits on a disk write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from gateway.access.keys import KeyLimits
from gateway.access.limits import Admission
from gateway.access.usage import UsageCounters, UsageKey


class StoreUnavailable(Exception):
    """The store could not answer (connection lost, timeout); the message holds no credentials."""


@dataclass(slots=True)
class UsageBatch:
    """What happened since the last commit."""

    rows: dict[UsageKey, UsageCounters] = field(default_factory=dict)
    # (key name, whole second) -> tokens spent, for keys with token limits.
    spend: dict[tuple[str, int], int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows or self.spend)

    def merge(self, other: UsageBatch) -> None:
        for row, counters in other.rows.items():
            mine = self.rows.get(row)
            if mine is None:
                self.rows[row] = counters
            else:
                mine.merge(counters)
        for slot, tokens in other.spend.items():
            self.spend[slot] = self.spend.get(slot, 0) + tokens


class UsageStore(Protocol):
    description: str  # for logs and /stats; never holds credentials

    async def open(self) -> None: ...

    async def admit(self, key: str, limits: KeyLimits) -> Admission: ...

    async def commit(self, batch: UsageBatch) -> None: ...

    async def read_usage(self) -> dict[UsageKey, UsageCounters]: ...

    async def aclose(self) -> None: ...
