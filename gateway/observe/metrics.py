"""Prometheus metrics: what the gateway did, by route and provider, in one registry the app owns.

`GatewayMetrics` is a request observer (`request_finished(record)`) plus a few hooks the rest of the
gateway calls where things happen (a stream opening and closing, a retry, a failover, a config reload).
Provider health and breaker state are not pushed at all: they are read from the live runtime when
`/metrics` is scraped, so the hot path never pays for them.

Several workers (`gateway serve --workers N`): prometheus-client's multiprocess mode. The workers share
one listening socket, so a scrape lands on any one of them; per-worker labels would make every counter
jump between scrapes as different workers answer. In multiprocess mode each worker writes its samples to
memory-mapped files under `PROMETHEUS_MULTIPROC_DIR` and the worker that answers a scrape sums them all.
prometheus-client picks the mode when it is imported, so the variable must be set (by the CLI, to a fresh
directory) before the workers start. Costs: about 0.5-1 us per counter increment and 1-2 us per histogram
observation in one process, about twice that in multiprocess mode; a request touches six to nine series.
What a scrape cannot sum is per-worker state: provider health and breakers are reported by the answering
worker, with a `pid` label in multiprocess mode so different workers' views do not look like one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from gateway.records import RequestRecord
from gateway.streaming.stats import StreamStats

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds. Chat answers run from milliseconds (a cached or tiny answer) to minutes (long generations).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
FIRST_TOKEN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
INTERVAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ATTEMPT_BUCKETS = (1, 2, 3, 4, 6, 10)
BREAKER_STATES = ("closed", "open", "half_open")
NONE = "none"  # label value when a request matched no route or reached no provider


@dataclass(frozen=True, slots=True)
class ProviderStatus:
    """One provider as the scrape sees it (built by whoever owns the runtime, at scrape time)."""

    name: str
    available: bool  # configured usable (its secret is set, ...)
    healthy: bool  # active health checks say so (unknown counts as healthy)
    breaker: str  # closed | open | half_open


ProviderSource = Callable[[], Iterable[ProviderStatus]]


class _ProviderCollector(Collector):
    """Provider gauges computed at scrape time from the live runtime."""

    def __init__(self, source: ProviderSource, pid: str | None) -> None:
        self.source = source
        self.pid = pid

    def collect(self) -> Iterator[Metric]:
        extra = ["pid"] if self.pid else []
        tail = [self.pid] if self.pid else []
        available = GaugeMetricFamily(
            "gateway_provider_available",
            "1 if the provider is configured usable",
            labels=["provider", *extra],
        )
        healthy = GaugeMetricFamily(
            "gateway_provider_healthy",
            "1 if active health checks pass (or none ran yet)",
            labels=["provider", *extra],
        )
        breaker = GaugeMetricFamily(
            "gateway_provider_breaker_state",
            "1 for the circuit breaker's current state, 0 for the others",
            labels=["provider", "state", *extra],
        )
        for status in self.source():
            available.add_metric([status.name, *tail], 1.0 if status.available else 0.0)
            healthy.add_metric([status.name, *tail], 1.0 if status.healthy else 0.0)
            for state in BREAKER_STATES:
                breaker.add_metric([status.name, state, *tail], 1.0 if status.breaker == state else 0.0)
        yield from (available, healthy, breaker)


class GatewayMetrics:
    """All gateway metrics. One instance per app (the lifespan builds it); no module-level state."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        # In multiprocess mode samples live in files and a scrape reads them all, so the metric objects
        # are registered nowhere; in one process they live in this instance's own registry.
        self.multiprocess_dir = (
            multiprocess_dir if multiprocess_dir is not None else os.environ.get(MULTIPROCESS_ENV)
        )
        self.registry = CollectorRegistry(auto_describe=True)
        own: CollectorRegistry | None = None if self.multiprocess_dir else self.registry
        self._provider_collector: _ProviderCollector | None = None
        self.requests = Counter(
            "gateway_requests",
            "Chat requests by route, provider, HTTP status and whether streamed",
            ["route", "provider", "status", "stream"],
            registry=own,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Request arrival to last byte sent",
            ["route", "stream"],
            buckets=DURATION_BUCKETS,
            registry=own,
        )
        self.first_token = Histogram(
            "gateway_time_to_first_token_seconds",
            "Request arrival to the first streamed event sent to the client",
            ["route", "provider"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=own,
        )
        self.chunk_interval = Histogram(
            "gateway_stream_chunk_interval_seconds",
            "Mean gap between a stream's events, one observation per stream (no per-chunk cost)",
            ["route", "provider"],
            buckets=INTERVAL_BUCKETS,
            registry=own,
        )
        self.max_chunk_interval = Histogram(
            "gateway_stream_max_chunk_interval_seconds",
            "Longest gap between two events of a stream, one observation per stream",
            ["route", "provider"],
            buckets=INTERVAL_BUCKETS,
            registry=own,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens reported by upstream usage blocks",
            ["route", "provider", "kind"],
            registry=own,
        )
        self.attempts = Histogram(
            "gateway_request_attempts",
            "Upstream attempts per request (1 = neither retried nor failed over)",
            ["route"],
            buckets=ATTEMPT_BUCKETS,
            registry=own,
        )
        self.retries = Counter(
            "gateway_retries",
            "Attempts repeated on the same provider",
            ["route", "provider", "reason"],
            registry=own,
        )
        self.failovers = Counter(
            "gateway_failovers",
            "Moves to the next target after a provider failed",
            ["route", "provider", "reason"],
            registry=own,
        )
        self.open_streams = Gauge(
            "gateway_open_streams", "Streams currently relayed", registry=own, multiprocess_mode="livesum"
        )
        self.reloads = Counter("gateway_config_reloads", "Config reloads by result", ["result"], registry=own)
        self.config_info = Gauge(
            "gateway_config_info",
            "1 for the config version in use (a short hash of the effective config)",
            ["version"],
            registry=own,
            multiprocess_mode="liveall",
        )
        self._config_version: str | None = None
        # Label children are cached: `.labels()` costs more than the increment it serves.
        self._children: dict[tuple[Any, ...], Any] = {}

    # Wiring

    def watch_providers(self, source: ProviderSource) -> None:
        """Report provider state from `source` at every scrape (replaces an earlier source)."""
        if self._provider_collector is not None:
            self.registry.unregister(self._provider_collector)
        pid = str(os.getpid()) if self.multiprocess_dir else None
        self._provider_collector = _ProviderCollector(source, pid)
        self.registry.register(self._provider_collector)

    def render(self) -> tuple[bytes, str]:
        """The `/metrics` body and its content type."""
        if not self.multiprocess_dir:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        scrape = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(scrape, path=self.multiprocess_dir)
        if self._provider_collector is not None:
            scrape.register(self._provider_collector)
        return generate_latest(scrape), CONTENT_TYPE_LATEST

    def worker_exited(self, pid: int) -> None:
        """Multiprocess mode: drop a finished worker's live gauges (open streams, config info)."""
        if self.multiprocess_dir:
            prometheus_multiprocess.mark_process_dead(pid, self.multiprocess_dir)

    # Observations

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    async def request_finished(self, record: RequestRecord) -> None:
        """The request observer: one call per finished chat request (streams: after the last byte)."""
        route = record.route or NONE
        provider = record.provider or NONE
        stream = "true" if record.stream else "false"
        self._child(self.requests, route, provider, str(record.status_code), stream).inc()
        self._child(self.duration, route, stream).observe(record.duration)
        if record.attempts:
            self._child(self.attempts, route).observe(record.attempts)
        if record.time_to_first_chunk is not None:
            self._child(self.first_token, route, provider).observe(record.time_to_first_chunk)
        if record.usage:
            prompt, completion = record.prompt_tokens, record.completion_tokens
            if prompt:
                self._child(self.tokens, route, provider, "prompt").inc(prompt)
            if completion:
                self._child(self.tokens, route, provider, "completion").inc(completion)

    def stream_opened(self) -> None:
        self.open_streams.inc()

    def stream_closed(self, route: str | None, stats: StreamStats) -> None:
        """A relayed stream ended (any way): its gap statistics, once per stream."""
        self.open_streams.dec()
        average = stats.average_interval
        if average is not None:
            labels = (route or NONE, stats.provider)
            self._child(self.chunk_interval, *labels).observe(average)
            self._child(self.max_chunk_interval, *labels).observe(stats.max_interval)

    def retried(self, route: str, provider: str, reason: str) -> None:
        """`reason`: the retry condition that matched (a status such as "503", or connect_error, timeout)."""
        self._child(self.retries, route, provider, reason).inc()

    def failed_over(self, route: str, provider: str, reason: str) -> None:
        """`provider` is the one given up on."""
        self._child(self.failovers, route, provider, reason).inc()

    def config_reloaded(self, ok: bool, version: str | None = None) -> None:
        self.reloads.labels("ok" if ok else "failed").inc()
        if ok and version is not None:
            self.config_loaded(version)

    def config_loaded(self, version: str) -> None:
        """The config in use (at startup and after each successful reload)."""
        if version == self._config_version:
            return
        if self._config_version is not None:
            if self.multiprocess_dir:  # series live in other workers' files too: mark, do not remove
                self.config_info.labels(self._config_version).set(0)
            else:
                self.config_info.remove(self._config_version)
        self.config_info.labels(version).set(1)
        self._config_version = version
