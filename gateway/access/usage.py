"""Usage counters per (key, model, route, provider, UTC day), and the `/stats` view of them.

Counters only ever add up (sums, a latency histogram with fixed buckets, min and max), so batches from
many requests, processes and restarts merge by addition: that is what lets SQLite and Redis store them
with plain `+=` updates. Latency covers requests that were sent upstream (refused ones would only drag
it towards zero); percentiles are read from the histogram: each is the upper bound of the bucket holding
it (never more than the observed maximum). A request counts on the UTC day it finished; rows written
before per-day accounting have no day (""): they count in every total, and in no day of `by_day`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.access.keys import GatewayKey
from gateway.config.prices import format_cost
from gateway.records import RequestRecord

# Upper bounds (milliseconds) of the latency buckets; one more bucket takes everything above.
LATENCY_BOUNDS_MS: tuple[int, ...] = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
COUNTER_FIELDS = ("requests", "errors", "prompt_tokens", "completion_tokens")
NO_KEY = ""  # requests without a gateway key (open mode, or refused before a key was known)
_NO_KEY_LABEL = "(no key)"


@dataclass(frozen=True, slots=True)
class UsageKey:
    """One row of the usage table; "" where a part is unknown (no key, no route matched, no day)."""

    key: str
    model: str
    route: str
    provider: str
    day: str = ""  # UTC, "2026-12-02"; "" for rows written before usage was kept per day

    @classmethod
    def of(cls, record: RequestRecord, day: str = "") -> UsageKey:
        return cls(record.key_name or NO_KEY, record.model, record.route or "", record.provider or "", day)


def utc_day(seconds: float) -> str:
    """The UTC day of a Unix time, as rows name it."""
    return time.strftime("%Y-%m-%d", time.gmtime(seconds))


@dataclass(slots=True)
class UsageCounters:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_sum: float = 0.0  # seconds
    latency_min: float | None = None
    latency_max: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * LATENCY_BUCKETS)
    cost: int = 0  # nano-units (1e-9) of the configured currency: integer sums are exact
    cost_estimated: int = 0  # requests charged by an estimate (streams cut before their usage)

    def add(self, record: RequestRecord) -> None:
        self.requests += 1
        if record.status_code >= 400 or record.stream_status == "error":
            self.errors += 1
        self.prompt_tokens += record.prompt_tokens
        self.completion_tokens += record.completion_tokens
        if record.cost:
            self.cost += record.cost
        self.cost_estimated += record.cost_estimated  # an estimate of nothing (no text got) is one too
        if record.attempts:  # latency of requests sent upstream; refusals (401, 429, ...) take ~0 s
            self.observe_latency(record.duration)

    def observe_latency(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_min = seconds if self.latency_min is None else min(self.latency_min, seconds)
        self.latency_max = max(self.latency_max, seconds)
        self.latency_buckets[latency_bucket(seconds)] += 1

    def merge(self, other: UsageCounters) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost += other.cost
        self.cost_estimated += other.cost_estimated
        self.latency_sum += other.latency_sum
        if other.latency_min is not None:
            self.latency_min = (
                other.latency_min if self.latency_min is None else min(self.latency_min, other.latency_min)
            )
        self.latency_max = max(self.latency_max, other.latency_max)
        for index, count in enumerate(other.latency_buckets):
            self.latency_buckets[index] += count

    @property
    def latency_count(self) -> int:
        return sum(self.latency_buckets)

    def summary(self) -> dict[str, Any]:
        count = self.latency_count
        latency: dict[str, float | None] = {
            "mean_ms": _ms(self.latency_sum / count) if count else None,
            "min_ms": _ms(self.latency_min) if self.latency_min is not None else None,
            "max_ms": _ms(self.latency_max) if count else None,
        }
        for name, quantile in (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99)):
            latency[name] = self._percentile_ms(quantile) if count else None
        return {
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost": format_cost(self.cost),  # a decimal string, in the document's `currency`
            "cost_estimated_requests": self.cost_estimated,
            "latency": latency,
        }

    def _percentile_ms(self, quantile: float) -> float:
        rank = quantile * self.latency_count
        seen = 0
        for index, count in enumerate(self.latency_buckets):
            seen += count
            if count and seen >= rank:
                bound = LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else None
                highest = _ms(self.latency_max)
                return highest if bound is None else min(float(bound), highest)
        return _ms(self.latency_max)


def latency_bucket(seconds: float) -> int:
    milliseconds = seconds * 1000
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        if milliseconds <= bound:
            return index
    return len(LATENCY_BOUNDS_MS)


def render_stats(
    rows: Mapping[UsageKey, UsageCounters], keys: Iterable[GatewayKey], store: str
) -> dict[str, Any]:
    """The `/stats` document: totals, then the same counters grouped by key, model, route and provider,
    then every (key, model, route, provider) row over all days, then `by_day`: per UTC day its totals
    and the same groups. Keys appear by name and fingerprint only."""
    fingerprints = {key.name: key.fingerprint for key in keys}
    totals = UsageCounters()
    groups = _Groups()
    days: dict[str, tuple[UsageCounters, _Groups]] = {}
    merged: dict[tuple[str, str, str, str], UsageCounters] = {}
    for row, counters in rows.items():
        totals.merge(counters)
        groups.add(row, counters)
        merged.setdefault((row.key, row.model, row.route, row.provider), UsageCounters()).merge(counters)
        if row.day:
            day_totals, day_groups = days.setdefault(row.day, (UsageCounters(), _Groups()))
            day_totals.merge(counters)
            day_groups.add(row, counters)
    listed = sorted(merged.items(), key=lambda item: (item[0][0], item[0][1], item[0][2]))
    return {
        "object": "gateway.stats",
        "store": store,
        "totals": totals.summary(),
        **groups.render(fingerprints),
        "rows": [
            {
                "key": key or None,
                "model": model or None,
                "route": route or None,
                "provider": provider or None,
                **counters.summary(),
            }
            for (key, model, route, provider), counters in listed
        ],
        "by_day": {
            day: {**day_totals.summary(), **day_groups.render(fingerprints)}
            for day, (day_totals, day_groups) in sorted(days.items())
        },
    }


class _Groups:
    """Counters summed by key, model, route and provider."""

    __slots__ = ("key", "model", "provider", "route")

    def __init__(self) -> None:
        self.key: dict[str, UsageCounters] = {}
        self.model: dict[str, UsageCounters] = {}
        self.route: dict[str, UsageCounters] = {}
        self.provider: dict[str, UsageCounters] = {}

    def add(self, row: UsageKey, counters: UsageCounters) -> None:
        for group, value in (
            (self.key, row.key or _NO_KEY_LABEL),
            (self.model, row.model),
            (self.route, row.route),
            (self.provider, row.provider),
        ):
            if value:
                group.setdefault(value, UsageCounters()).merge(counters)

    def render(self, fingerprints: Mapping[str, str]) -> dict[str, Any]:
        return {
            "by_key": {
                name: {"fingerprint": fingerprints.get(name), **counters.summary()}
                for name, counters in sorted(self.key.items())
            },
            "by_model": _summaries(self.model),
            "by_route": _summaries(self.route),
            "by_provider": _summaries(self.provider),
        }


def _summaries(group: Mapping[str, UsageCounters]) -> dict[str, dict[str, Any]]:
    return {name: counters.summary() for name, counters in sorted(group.items())}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
