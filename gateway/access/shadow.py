"""Would-blocks of limits in shadow mode: counted per (key, limit), logged once per key and minute.

The access controller hands every admitted request's `Admission.would_block` here. The counts live as
long as the controller (reloads keep them: they are counters) and are read at scrape time by the
metrics (`gateway_limit_would_block_total{key,limit}`), as the store's state is, so `access` never
imports `observe`. Each gateway process counts its own would-blocks; over replicas sharing a Redis store
the per-process counters add up to the would-blocks of the shared window.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping

logger = logging.getLogger("gateway.access")

LOG_INTERVAL = 60.0  # seconds between two "would have been limited" lines of one key


class ShadowCounts:
    """Would-blocks since start, by (key name, limit name)."""

    __slots__ = ("_clock", "_counts", "_logged_at")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, str], int] = {}  # (key, limit name) -> would-blocks
        self._logged_at: dict[str, float] = {}  # key name -> clock of its last log line

    def observed(self, key: str, limits: Iterable[str]) -> None:
        """One admitted request of `key` that each of `limits` (limits or budgets in shadow mode) would
        have refused."""
        counts = self._counts
        names = tuple(limits)
        if not names:
            return
        for limit in names:
            counts[(key, limit)] = counts.get((key, limit), 0) + 1
        now = self._clock()
        last = self._logged_at.get(key)
        if last is None or now - last >= LOG_INTERVAL:
            self._logged_at[key] = now
            logger.warning("key %s would have been limited by %s (shadow)", key, " and ".join(names))

    def counts(self) -> Mapping[tuple[str, str], int]:
        """A copy of the counts, for a scrape."""
        return dict(self._counts)
