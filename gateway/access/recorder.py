"""The usage observer: adds each finished request to an in-memory batch; a background task commits it.

`request_finished` runs before a non-streaming response is sent, so it does no I/O: a few dict updates.
The flush task hands the batch to the store every `flush_interval` seconds, and once more on shutdown. A
failed commit keeps the batch for the next try (bounded, so a dead store cannot grow memory forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from gateway.access.keys import GatewayKey
from gateway.access.store import Settlement, UsageBatch, UsageStore
from gateway.access.usage import UsageCounters, UsageKey, utc_day
from gateway.config.models import DEFAULT_RETENTION_DAYS
from gateway.records import RequestRecord

logger = logging.getLogger("gateway.access")

DAY_SECONDS = 86_400
_MAX_PENDING_ROWS = 100_000  # beyond this a failing store loses the oldest batch (said in the log)
PRUNE_INTERVAL = 3600.0  # seconds between two deletions of the days past the retention


class UsageRecorder:
    """A `RequestObserver`. `keys()` gives the current keys by name (they change on reload)."""

    def __init__(
        self,
        store: UsageStore,
        keys: Callable[[], Mapping[str, GatewayKey]],
        flush_interval: float,
        clock: Callable[[], float] = time.time,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self.store = store
        self._keys = keys
        self._interval = flush_interval
        self._clock = clock
        self._retention = retention_days
        self._pruned_at: float | None = None  # the last prune: at most one an hour, the first at start
        self._pending = UsageBatch()
        self._task: asyncio.Task[None] | None = None
        self._day_number = -1  # the UTC day `_day_name` names, so a request formats no date
        self._day_name = ""

    async def request_finished(self, record: RequestRecord) -> None:
        batch = self._pending
        row = UsageKey.of(record, self._today())
        counters = batch.rows.get(row)
        if counters is None:
            counters = batch.rows[row] = UsageCounters()
        counters.add(record)
        if record.key_name is None or not record.usage:
            return
        key = self._keys().get(record.key_name)
        if key is not None and key.limits.counts_tokens:
            spent = record.prompt_tokens + record.completion_tokens
            if spent:
                slot = (key.name, int(self._clock()))
                batch.spend[slot] = batch.spend.get(slot, 0) + spent

    def _today(self) -> str:
        """The UTC day rows are counted on: a clock read and a division per request."""
        now = self._clock()
        number = int(now // DAY_SECONDS)
        if number != self._day_number:
            self._day_number, self._day_name = number, utc_day(now)
        return self._day_name

    def settle(self, settlement: Settlement) -> None:
        """A budget settlement, written with the next batch (no I/O here)."""
        self._pending.settlements.append(settlement)

    async def flush(self) -> None:
        """Commit what has been recorded so far (also called by /stats so it reads current numbers)."""
        batch, self._pending = self._pending, UsageBatch()
        if not batch:
            return
        try:
            await self.store.commit(batch)
        except Exception as exc:
            if len(self._pending.rows) + len(batch.rows) > _MAX_PENDING_ROWS:
                logger.error(
                    "usage store %s failed (%s); dropping a usage batch", self.store.description, exc
                )
                return
            logger.warning("usage store %s failed (%s); will retry", self.store.description, exc)
            batch.merge(self._pending)
            self._pending = batch

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-flush")

    async def aclose(self) -> None:
        """Stop the flush task and commit what is left."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def prune(self) -> None:
        """Delete the per-day rows older than the retention (`settings.stats_retention_days`), at most
        once an hour; a store that cannot answer is asked again at the next hour."""
        now = self._clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_INTERVAL:
            return
        self._pruned_at = now
        before = utc_day(now - self._retention * DAY_SECONDS)
        try:
            deleted = await self.store.prune(before)
        except Exception as exc:
            logger.warning(
                "usage store %s: deleting the days before %s failed (%s)", self.store.description, before, exc
            )
            return
        if deleted:
            logger.info(
                "usage store %s: deleted %d usage rows of days before %s",
                self.store.description,
                deleted,
                before,
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
            await self.prune()
