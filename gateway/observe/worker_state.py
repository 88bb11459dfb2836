"""The metrics of one worker's own state, computed when `/metrics` is scraped: provider availability,
health, breaker state and connections, config reload counts, the usage store's state, the
would-blocks of limits in shadow mode and the spans dropped before export. Nothing here costs a request
anything."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

BREAKER_STATES = ("closed", "open", "half_open")


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """One provider as the scrape sees it (built by whoever owns the runtime, at scrape time)."""

    name: str
    available: bool  # configured usable (its secret is set, ...)
    healthy: bool  # active health checks say so (unknown counts as healthy)
    breaker: str  # closed | open | half_open
    connections_in_use: int = 0
    connections_idle: int = 0
    waiting: int = 0  # requests waiting for a connection or a concurrency slot


@dataclass(frozen=True, slots=True)
class ReloadCounts:
    """Config reloads of this process so far, by result (read from the reload manager at scrape time)."""

    applied: int
    rejected: int


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """The usage store as requests found it (read from the access controller at scrape time)."""

    available: bool
    unavailable_requests: int  # requests that found it unavailable, since start


ProviderSource = Callable[[], Iterable[ProviderStatus]]
ReloadSource = Callable[[], ReloadCounts]
StoreSource = Callable[[], StoreStatus]
# (key name, limit name) -> requests a limit in shadow mode would have refused, since start
WouldBlockSource = Callable[[], Mapping[tuple[str, str], int]]
# Spans dropped before export since start (observe/span_pipe.py: queue full, or the exporter down)
DroppedSpansSource = Callable[[], int]


class WorkerStateCollector(Collector):
    """Gauges and counters of this worker's own state, computed at scrape time."""

    def __init__(self, pid: str | None) -> None:
        self.pid = pid
        self.providers: ProviderSource | None = None
        self.reloads: ReloadSource | None = None
        self.store: StoreSource | None = None
        self.would_block: WouldBlockSource | None = None
        self.dropped_spans: DroppedSpansSource | None = None

    def collect(self) -> Iterator[Metric]:
        extra = ["pid"] if self.pid else []
        tail = [self.pid] if self.pid else []
        if self.providers is not None:
            yield from self._provider_families(extra, tail)
        if self.reloads is not None:
            counts = self.reloads()
            reloads = CounterMetricFamily(
                "gateway_config_reloads",
                "Config reloads by result: ok (applied) or failed (rejected, the last good config kept)",
                labels=["result", *extra],
            )
            reloads.add_metric(["ok", *tail], counts.applied)
            reloads.add_metric(["failed", *tail], counts.rejected)
            yield reloads
        if self.store is not None:
            store = self.store()
            available = GaugeMetricFamily(
                "gateway_store_available",
                "1 while the usage store answers (0 during an outage: see settings.store_failure_mode)",
                labels=extra,
            )
            available.add_metric(tail, 1.0 if store.available else 0.0)
            unavailable = CounterMetricFamily(
                "gateway_store_unavailable",
                "Requests of keys with limits that found the usage store unavailable (refused with 503 "
                "in fail_closed mode, admitted without limits in fail_open mode)",
                labels=extra,
            )
            unavailable.add_metric(tail, float(store.unavailable_requests))
            yield available
            yield unavailable
        if self.would_block is not None:
            would_block = CounterMetricFamily(
                "gateway_limit_would_block",
                "Requests a key's limit in shadow mode would have refused (they were admitted), by key "
                "and limit",
                labels=["key", "limit", *extra],
            )
            for (key, limit), count in sorted(self.would_block().items()):
                would_block.add_metric([key, limit, *tail], float(count))
            yield would_block
        if self.dropped_spans is not None:
            dropped = CounterMetricFamily(
                "gateway_spans_dropped",
                "Trace spans dropped before export: the export queue was full (OTEL_BSP_MAX_QUEUE_SIZE: the "
                "exporter process did not keep up) or the exporter process was down",
                labels=extra,
            )
            dropped.add_metric(tail, float(self.dropped_spans()))
            yield dropped

    def _provider_families(self, extra: list[str], tail: list[str]) -> Iterator[Metric]:
        assert self.providers is not None
        available = GaugeMetricFamily(
            "gateway_provider_available",
            "1 if the provider is configured usable (its secret is set)",
            labels=["provider", *extra],
        )
        healthy = GaugeMetricFamily(
            "gateway_provider_healthy",
            "1 unless active health checks mark the provider unhealthy (none ran yet counts as healthy)",
            labels=["provider", *extra],
        )
        breaker = GaugeMetricFamily(
            "gateway_provider_breaker_state",
            "1 for the circuit breaker's current state (closed, open, half_open), 0 for the others",
            labels=["provider", "state", *extra],
        )
        connections = GaugeMetricFamily(
            "gateway_provider_connections",
            "Upstream connections by state (in_use, idle), and requests waiting for one (waiting): a "
            "waiting count above 0 means the provider's pool limit is reached",
            labels=["provider", "state", *extra],
        )
        for status in self.providers():
            connections.add_metric([status.name, "in_use", *tail], float(status.connections_in_use))
            connections.add_metric([status.name, "idle", *tail], float(status.connections_idle))
            connections.add_metric([status.name, "waiting", *tail], float(status.waiting))
            available.add_metric([status.name, *tail], 1.0 if status.available else 0.0)
            healthy.add_metric([status.name, *tail], 1.0 if status.healthy else 0.0)
            for state in BREAKER_STATES:
                breaker.add_metric([status.name, state, *tail], 1.0 if status.breaker == state else 0.0)
        yield from (available, healthy, breaker, connections)
