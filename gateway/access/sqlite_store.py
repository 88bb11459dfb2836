"""The embedded store: usage in a SQLite file (or in memory), limits counted in this process.

Nothing here runs SQL on the event loop: `commit` and `read_usage` run in a worker thread, one at a time
(the connection is used by one thread at a time, under an asyncio lock). Every write is an UPSERT that
adds to the stored counters, so a batch is one short transaction and two processes sharing the file
add up correctly (WAL journal, busy timeout). Rows are per UTC day (`day`); a file written before that
is migrated on open, its rows kept with no day. Request limits are counted in memory (`LocalLimiter`):
exact for one process; replicas that must share a quota use the Redis store. Per-day token spend is
written too and read back on start, so a restart does not reset a daily token limit. Budgets are counted
in memory too (`BudgetLedger`: check and hold in one step, settled at a request's end); their spend per
slot is written with each batch and read back on start, so a restart does not reset a monthly budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from gateway.access.budget_windows import BudgetState, period, place
from gateway.access.keys import KeyLimits
from gateway.access.limits import DAY, DAY_BUCKET, Admission
from gateway.access.local_limiter import LocalLimiter
from gateway.access.settings import StoreSettings
from gateway.access.store import Settlement, UsageBatch
from gateway.access.usage import LATENCY_BUCKETS, UsageCounters, UsageKey
from gateway.config.budget_models import Budget

T = TypeVar("T")

_ROW = ("key", "model", "route", "provider", "day")
_SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "latency_sum")
_BUCKETS = tuple(f"latency_{index}" for index in range(LATENCY_BUCKETS))
# Added after the first release: a file written before them gets them by `ALTER TABLE` on open.
_COST = ("cost", "cost_estimated")
_COLUMNS = (*_ROW, *_SUMS, "latency_min", "latency_max", *_BUCKETS, *_COST)


def _usage_table(name: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {name} (
    key TEXT NOT NULL, model TEXT NOT NULL, route TEXT NOT NULL, provider TEXT NOT NULL,
    day TEXT NOT NULL DEFAULT '',
    requests INTEGER NOT NULL, errors INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    latency_sum REAL NOT NULL, latency_min REAL, latency_max REAL NOT NULL,
    {", ".join(f"{column} INTEGER NOT NULL" for column in _BUCKETS)},
    {", ".join(f"{column} INTEGER NOT NULL DEFAULT 0" for column in _COST)},
    PRIMARY KEY (key, model, route, provider, day)
) WITHOUT ROWID;
"""


_SCHEMA = f"""
{_usage_table("usage")}
CREATE TABLE IF NOT EXISTS token_spend (
    key TEXT NOT NULL, bucket INTEGER NOT NULL, tokens INTEGER NOT NULL,
    PRIMARY KEY (key, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS budget_spend (
    key TEXT NOT NULL, place TEXT NOT NULL, slot INTEGER NOT NULL, nano INTEGER NOT NULL,
    PRIMARY KEY (key, place, slot)
) WITHOUT ROWID;
"""

_UPSERT_USAGE = (
    f"INSERT INTO usage ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    "ON CONFLICT (key, model, route, provider, day) DO UPDATE SET "
    + ", ".join(f"{name} = {name} + excluded.{name}" for name in (*_SUMS, *_BUCKETS, *_COST))
    + ", latency_min = coalesce(min(latency_min, excluded.latency_min), latency_min, excluded.latency_min)"
    + ", latency_max = max(latency_max, excluded.latency_max)"
)
_UPSERT_BUDGET = (
    "INSERT INTO budget_spend (key, place, slot, nano) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key, place, slot) DO UPDATE SET nano = nano + excluded.nano"
)
_UPSERT_SPEND = (
    "INSERT INTO token_spend (key, bucket, tokens) VALUES (?, ?, ?) "
    "ON CONFLICT (key, bucket) DO UPDATE SET tokens = tokens + excluded.tokens"
)


class SQLiteStore:
    def __init__(self, settings: StoreSettings, clock: Callable[[], float] = time.time) -> None:
        self.description = settings.describe()
        self.path = settings.sqlite_path
        self._clock = clock
        self._limiter = LocalLimiter(clock)
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = await asyncio.to_thread(_connect, self.path)
        oldest_bucket = int((self._clock() - DAY) // DAY_BUCKET)
        spends = await self._run(_read_spend, oldest_bucket)
        self._limiter.load((key, bucket * DAY_BUCKET, tokens) for key, bucket, tokens in spends)
        self._limiter.budgets.load(await self._run(_read_budget_spend))

    async def admit(self, key: str, limits: KeyLimits, amount: int | None = None) -> Admission:
        return self._limiter.admit(key, limits, amount)

    def settle(self, settlement: Settlement) -> None:
        self._limiter.budgets.settle(
            settlement.key, settlement.budgets, settlement.hold_id, settlement.cost, settlement.at
        )

    async def read_budgets(self, key: str, budgets: tuple[Budget, ...]) -> list[BudgetState]:
        return self._limiter.budgets.states(key, budgets, self._clock())

    async def commit(self, batch: UsageBatch) -> None:
        for (key, second), tokens in batch.spend.items():
            self._limiter.spend(key, tokens, float(second))
        oldest_bucket = int((self._clock() - DAY) // DAY_BUCKET)
        await self._run(_write, batch, oldest_bucket, _budget_rows(batch.settlements, self._clock()))

    async def read_usage(self) -> dict[UsageKey, UsageCounters]:
        return await self._run(_read_usage)

    async def prune(self, before_day: str) -> int:
        return await self._run(_prune, before_day)

    async def aclose(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            async with self._lock:
                await _finished_even_if_cancelled(asyncio.to_thread(db.close))

    async def _run(self, work: Callable[..., T], *args: Any) -> T:
        if self._db is None:
            raise RuntimeError("the SQLite usage store is not open")
        async with self._lock:
            return await _finished_even_if_cancelled(asyncio.to_thread(work, self._db, *args))


async def _finished_even_if_cancelled(work: Awaitable[T]) -> T:
    """Await a thread's work; a cancelled caller still waits for the thread to finish (it cannot be
    stopped) before giving the lock up. Otherwise `aclose` could close the connection under a write
    still running in its thread: SQLite then crashes the process (seen as a segfault at shutdown)."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        raise


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA busy_timeout = 5000")
    if path != ":memory:":
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(_SCHEMA)
    present = {row[1] for row in db.execute("PRAGMA table_info(usage)")}
    for name in _COST:
        if name not in present:
            db.execute(f"ALTER TABLE usage ADD COLUMN {name} INTEGER NOT NULL DEFAULT 0")
    if "day" not in present:
        _add_day(db)
    return db


def _add_day(db: sqlite3.Connection) -> None:
    """Migrate a file written before usage was kept per day: the day joins the primary key, which SQLite
    cannot alter, so the rows are copied into a new table (their day "") that then takes the old one's
    name, in one transaction. Under the write lock the column is looked for again: another process
    sharing the file may have just migrated it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if "day" not in {row[1] for row in db.execute("PRAGMA table_info(usage)")}:
            kept = ", ".join(column for column in _COLUMNS if column != "day")
            db.execute(_usage_table("usage_by_day"))
            db.execute(f"INSERT INTO usage_by_day ({kept}) SELECT {kept} FROM usage")
            db.execute("DROP TABLE usage")
            db.execute("ALTER TABLE usage_by_day RENAME TO usage")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


BudgetRows = tuple[dict[tuple[str, str, int], int], dict[str, int]]


def _budget_rows(settlements: list[Settlement], now: float) -> BudgetRows:
    """(spend to add per (key, place, slot), the oldest slot still needed per place)."""
    spend: dict[tuple[str, str, int], int] = {}
    oldest: dict[str, int] = {}
    for settlement in settlements:
        for budget in settlement.budgets:
            where = place(budget)
            if settlement.cost:
                row = (settlement.key, where, period(budget, settlement.at).slot)
                spend[row] = spend.get(row, 0) + settlement.cost
            current = period(budget, now)
            # A calendar slot is kept one period more (a request settled just after midnight).
            keep = current.oldest - (1 if budget.window is None else 0)
            oldest[where] = min(oldest.get(where, keep), keep)
    return spend, oldest


def _write(db: sqlite3.Connection, batch: UsageBatch, oldest_bucket: int, budgets: BudgetRows) -> None:
    usage = [_usage_values(row, counters) for row, counters in batch.rows.items()]
    spend: dict[tuple[str, int], int] = {}
    for (key, second), tokens in batch.spend.items():
        slot = (key, int(second // DAY_BUCKET))
        spend[slot] = spend.get(slot, 0) + tokens
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(_UPSERT_USAGE, usage)
        db.executemany(_UPSERT_SPEND, [(key, bucket, tokens) for (key, bucket), tokens in spend.items()])
        db.execute("DELETE FROM token_spend WHERE bucket < ?", (oldest_bucket,))
        budget_spend, oldest = budgets
        db.executemany(_UPSERT_BUDGET, [(*row, nano) for row, nano in budget_spend.items()])
        db.executemany("DELETE FROM budget_spend WHERE place = ? AND slot < ?", list(oldest.items()))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _usage_values(row: UsageKey, counters: UsageCounters) -> tuple[Any, ...]:
    return (
        row.key,
        row.model,
        row.route,
        row.provider,
        row.day,
        counters.requests,
        counters.errors,
        counters.prompt_tokens,
        counters.completion_tokens,
        counters.latency_sum,
        counters.latency_min,
        counters.latency_max,
        *counters.latency_buckets,
        counters.cost,
        counters.cost_estimated,
    )


def _prune(db: sqlite3.Connection, before_day: str) -> int:
    with db:
        return db.execute("DELETE FROM usage WHERE day != '' AND day < ?", (before_day,)).rowcount


def _read_usage(db: sqlite3.Connection) -> dict[UsageKey, UsageCounters]:
    out: dict[UsageKey, UsageCounters] = {}
    for values in db.execute(f"SELECT {', '.join(_COLUMNS)} FROM usage"):
        row, (requests, errors, prompt, completion, total, low, high) = values[:5], values[5:12]
        buckets, cost = list(values[12 : 12 + LATENCY_BUCKETS]), values[12 + LATENCY_BUCKETS :]
        out[UsageKey(*row)] = UsageCounters(
            requests, errors, prompt, completion, total, low, high, buckets, *cost
        )
    return out


def _read_spend(db: sqlite3.Connection, oldest_bucket: int) -> list[tuple[str, int, int]]:
    return db.execute(
        "SELECT key, bucket, tokens FROM token_spend WHERE bucket >= ?", (oldest_bucket,)
    ).fetchall()


def _read_budget_spend(db: sqlite3.Connection) -> list[tuple[str, str, int, int]]:
    return db.execute("SELECT key, place, slot, nano FROM budget_spend").fetchall()
