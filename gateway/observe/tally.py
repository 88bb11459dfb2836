"""Plain-Python tallies in front of prometheus-client's label children, for the one-process hot path.

prometheus-client takes a lock per sample and finds a histogram's bucket with a Python loop; counting here
is an addition (or a `bisect` and an addition), and `flush()` hands the sums to the child before a scrape,
leaving exactly what the same `inc()` / `observe()` calls would have left (bucket counts; sums up to
float rounding). Single-threaded: count and flush on the event loop's thread.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any


class CountTally:
    """A counter's or gauge's increments since the last flush."""

    __slots__ = ("child", "pending")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.pending = 0.0

    def inc(self, amount: float = 1) -> None:
        self.pending += amount

    def dec(self, amount: float = 1) -> None:
        self.pending -= amount

    def flush(self) -> None:
        pending, self.pending = self.pending, 0.0
        if pending:
            self.child.inc(pending)


class HistogramTally:
    """A histogram's observations since the last flush: a count per bucket and the sum.

    Flushed into the child's own bucket values (prometheus-client keeps one non-cumulative value per
    bucket, `_buckets`, with their bounds in `_upper_bounds`, and `_sum`), exactly what the same
    `observe()` calls would have left there."""

    __slots__ = ("bounds", "child", "counts", "sum")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.bounds: list[float] = list(child._upper_bounds)  # ends with +Inf
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1  # the first bound >= amount, as observe()
        self.sum += amount

    def flush(self) -> None:
        counts, total = self.counts, self.sum
        if not any(counts):
            return
        self.counts, self.sum = [0] * len(counts), 0.0
        for bucket, count in zip(self.child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        self.child._sum.inc(total)
