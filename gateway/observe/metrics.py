"""Prometheus metrics: what the gateway did, by route and provider, in one registry the app owns.

`GatewayMetrics` is a request observer (`request_finished(record)`, once per finished chat request) and
a stream observer (`stream_opened()`, for the open-streams gauge). Everything a request reports comes
from its `RequestRecord`: status, duration, time to first token, the gaps between a stream's events
(its mean and longest gap, one observation each per stream: no per-chunk work), tokens, attempts,
retries and failovers. Per-worker state is not pushed at all: provider health and breaker state and the
reload counts are read from the live runtime and reload manager when `/metrics` is scraped, so the hot
path never pays for them.

Several workers (`gateway serve --workers N`): prometheus-client's multiprocess mode, not per-worker
labels. The workers share one listening socket, so a scrape lands on any one of them; with per-worker
labels every scrape would show one worker's counters and the series of the others would go stale and
come back at random. In multiprocess mode each worker writes its samples to memory-mapped files under
`PROMETHEUS_MULTIPROC_DIR` and whichever worker answers a scrape sums them all: counters and
histograms add up across workers, open streams too (`livesum`), and the config version, when it was
loaded and whether the last reload was good are shown per worker (`liveall`, with a `pid` label: a
reload that reached only some workers is visible).
prometheus-client chooses the mode when it is first imported, so `gateway serve` sets the variable (to
a fresh directory) before it starts the workers. What a scrape cannot sum is the state each worker
keeps for itself (provider health, breakers, reload counts): those come from the worker that answers,
with a `pid` label in multiprocess mode so different workers' views never look like one series.

Costs (CPU time, `bench/metrics_overhead.py`): in one process the hot path only counts in plain Python
(tallies, handed to prometheus-client before each scrape); in multiprocess mode every sample is a lock
and an mmap write, several microseconds per request.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.config.prices import NANO
from gateway.observe.tally import CountTally, HistogramTally
from gateway.observe.worker_config import process_alive, remove_worker_files
from gateway.observe.worker_state import (
    DroppedSpansSource,
    ProviderSource,
    ReloadSource,
    StoreSource,
    WorkerStateCollector,
    WouldBlockSource,
)
from gateway.records import RequestRecord

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds. Chat answers run from milliseconds (a cached or tiny answer) to minutes (long generations).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
FIRST_TOKEN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
INTERVAL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ATTEMPT_BUCKETS = (1, 2, 3, 4, 6, 10)
NONE = "none"  # label value when a request matched no route or reached no provider
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]*_(\d+)\.db$")


class GatewayMetrics:
    """All gateway metrics. One instance per app; no module-level state (a test may build many)."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        # In multiprocess mode samples live in files and a scrape reads them all, so the metric objects
        # are registered nowhere; in one process they live in this instance's own registry.
        self.multiprocess_dir = (
            multiprocess_dir if multiprocess_dir is not None else os.environ.get(MULTIPROCESS_ENV)
        )
        self.registry = CollectorRegistry(auto_describe=True)
        own: CollectorRegistry | None = None if self.multiprocess_dir else self.registry
        self._worker_state = WorkerStateCollector(str(os.getpid()) if self.multiprocess_dir else None)
        self.registry.register(self._worker_state)
        self.requests = Counter(
            "gateway_requests",
            "Requests by route, provider (the last one tried), HTTP status, whether streamed, and the "
            "API the client spoke (chat, messages)",
            ["route", "provider", "status", "stream", "api"],
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
            "Request arrival to the first streamed event handed to the client",
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
        self.streams = Counter(
            "gateway_streams",
            "Relayed streams by how they ended: ok, error (an error event after the first byte), "
            "disconnected (the client left)",
            ["route", "provider", "outcome"],
            registry=own,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens reported by upstream usage blocks",
            ["route", "provider", "kind"],
            registry=own,
        )
        self.cost = Counter(
            "gateway_cost",
            "What requests cost by the configured prices (prices:), in `currency`, by route, provider "
            "and upstream model (cut streams by their estimate)",
            ["route", "provider", "model", "currency"],
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
            "gateway_retries", "Attempts repeated on the same provider", ["route"], registry=own
        )
        self.failovers = Counter(
            "gateway_failovers", "Moves to the next target after a provider failed", ["route"], registry=own
        )
        self.open_streams = Gauge(
            "gateway_open_streams", "Streams being relayed now", registry=own, multiprocess_mode="livesum"
        )
        # An info metric by the Prometheus convention (`_info`, value 1); a Gauge because prometheus-client
        # has no Info in multiprocess mode. The exposition is the same.
        self.config_info = Gauge(
            "gateway_config_info",
            "1 for the config version in use (a short hash of the effective config)",
            ["version"],
            registry=own,
            multiprocess_mode="liveall",
        )
        self.config_loaded_at = Gauge(
            "gateway_config_last_reload_timestamp_seconds",
            "When the config in use was loaded (startup or the last applied reload), Unix time",
            registry=own,
            multiprocess_mode="liveall",
        )
        self.config_reload_ok = Gauge(
            "gateway_config_last_reload_successful",
            "0 while the last reload was rejected (the last good config keeps serving), else 1",
            registry=own,
            multiprocess_mode="liveall",
        )
        self._config_version: str | None = None
        # Label children, cached per label combination: `.labels()` costs more than the increment it
        # serves, and one lookup per request finds every series the request touches.
        self._request_series: dict[tuple[str | None, str | None, int, bool, str], _RequestSeries] = {}
        self._stream_series: dict[tuple[str, str, str], _StreamSeries] = {}
        self._cost_series: dict[tuple[str | None, str | None, str | None, str | None], Any] = {}
        # In one process the hot path counts in plain Python and `flush()` hands the sums to
        # prometheus-client before each scrape: its per-sample lock and Python-level bucket search cost
        # twice what the counting does. In multiprocess mode a scrape reads the other workers' files,
        # which only see what they wrote, so every sample goes to prometheus-client at once there.
        self._tallies: list[CountTally | HistogramTally] | None = None if self.multiprocess_dir else []
        if self._tallies is not None:
            self.open_streams = self._tallied(self.open_streams)

    # Wiring

    def watch_providers(self, source: ProviderSource) -> None:
        """Report provider state from `source` at every scrape (replaces an earlier source)."""
        self._worker_state.providers = source

    def watch_reloads(self, source: ReloadSource) -> None:
        """Report config reload counts from `source` at every scrape (replaces an earlier source)."""
        self._worker_state.reloads = source

    def watch_store(self, source: StoreSource) -> None:
        """Report the usage store's availability from `source` at every scrape."""
        self._worker_state.store = source

    def watch_would_block(self, source: WouldBlockSource) -> None:
        """Report the would-blocks of limits in shadow mode from `source` at every scrape."""
        self._worker_state.would_block = source

    def watch_dropped_spans(self, source: DroppedSpansSource) -> None:
        """Report the trace spans dropped before export from `source` at every scrape (tracing on)."""
        self._worker_state.dropped_spans = source

    def _tallied(self, child: Any) -> Any:
        """`child` (a counter, gauge or histogram child) behind a plain-Python tally in one process."""
        if self._tallies is None:
            return child
        tally = HistogramTally(child) if hasattr(child, "_upper_bounds") else CountTally(child)
        self._tallies.append(tally)
        return tally

    def flush(self) -> None:
        """Hand what the tallies counted to prometheus-client. On the event loop's thread (the tallies
        are counted there without a lock); `render()` does it unless told it was done."""
        for tally in self._tallies or ():
            tally.flush()

    def render(self, *, flush: bool = True) -> tuple[bytes, str]:
        """The `/metrics` body and its content type. Blocking (multiprocess mode reads files). From
        another thread, `flush()` on the loop first and pass `flush=False`."""
        if not self.multiprocess_dir:
            if flush:
                self.flush()
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        forget_dead_workers(self.multiprocess_dir)
        scrape = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(scrape, path=self.multiprocess_dir)
        scrape.register(self._worker_state)
        return generate_latest(scrape), CONTENT_TYPE_LATEST

    # Observations

    async def request_finished(self, record: RequestRecord) -> None:
        """The request observer: one call per finished chat request (streams: after the last byte)."""
        key = (record.route, record.provider, record.status_code, record.stream, record.api)
        series = self._request_series.get(key)
        if series is None:
            series = self._request_series[key] = _RequestSeries(self, *key)
        series.requests.inc()
        series.duration.observe(record.duration)
        if record.attempts:
            series.attempts.observe(record.attempts)
        if record.retries:
            series.retries.inc(record.retries)
        if record.failovers:
            series.failovers.inc(record.failovers)
        if record.usage:
            prompt, completion = record.prompt_tokens, record.completion_tokens
            if prompt:
                series.prompt_tokens.inc(prompt)
            if completion:
                series.completion_tokens.inc(completion)
        if record.cost:
            self._count_cost(record, record.cost)
        if record.stream_status is not None:  # a relayed stream ended (`stream_opened` was called)
            self.open_streams.dec()
            self._stream_finished(record, record.stream_status)

    def _count_cost(self, record: RequestRecord, nano: int) -> None:
        key = (record.route, record.provider, record.upstream_model, record.currency)
        series = self._cost_series.get(key)
        if series is None:
            labels = [value or NONE for value in key]
            series = self._cost_series[key] = self._tallied(self.cost.labels(*labels))
        series.inc(nano / NANO)

    def _stream_finished(self, record: RequestRecord, outcome: str) -> None:
        key = (record.route or NONE, record.provider or NONE, outcome)
        series = self._stream_series.get(key)
        if series is None:
            series = self._stream_series[key] = _StreamSeries(self, *key)
        series.streams.inc()
        if record.time_to_first_chunk is not None:
            series.first_token.observe(record.time_to_first_chunk)
        if record.chunk_interval is not None:
            series.chunk_interval.observe(record.chunk_interval)
        if record.max_chunk_interval is not None:
            series.max_chunk_interval.observe(record.max_chunk_interval)

    def stream_opened(self) -> None:
        """The stream observer: a stream's first event is in and about to be relayed."""
        self.open_streams.inc()

    def config_loaded(self, version: str, loaded_at: float | None = None) -> None:
        """The config in use (at startup and after each applied reload), loaded at `loaded_at`."""
        if loaded_at is not None:
            self.config_loaded_at.set(loaded_at)
        if version == self._config_version:
            return
        if self._config_version is not None:
            if self.multiprocess_dir:  # this worker's old series stays in its file: show it as 0
                self.config_info.labels(self._config_version).set(0)
            else:
                self.config_info.remove(self._config_version)
        self.config_info.labels(version).set(1)
        self._config_version = version

    def reload_result(self, ok: bool) -> None:
        """How the last reload went (at startup: ok); not ok means the last good config keeps serving."""
        self.config_reload_ok.set(1 if ok else 0)


@contextlib.contextmanager
def multiprocess_directory(workers: int) -> Iterator[str | None]:
    """For `gateway serve`, around building the app and running the server: the metrics directory.

    `$PROMETHEUS_MULTIPROC_DIR` when set (created if missing, and emptied of the previous run's `*.db`
    files, as prometheus-client requires, and of its workers' config files); else, with several workers,
    a fresh temporary directory set in the environment the workers inherit and removed afterwards; else
    None (one process, in memory).
    """
    given = os.environ.get(MULTIPROCESS_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for path in glob.glob(os.path.join(given, "*.db")):
            os.remove(path)
        remove_worker_files(given)
        yield given
        return
    if workers <= 1:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ[MULTIPROCESS_ENV] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


class _RequestSeries:
    """The series one kind of finished request touches (route, provider, status, streamed or not)."""

    __slots__ = (
        "attempts",
        "completion_tokens",
        "duration",
        "failovers",
        "prompt_tokens",
        "requests",
        "retries",
    )

    def __init__(
        self,
        metrics: GatewayMetrics,
        route: str | None,
        provider: str | None,
        status: int,
        stream: bool,
        api: str,
    ) -> None:
        route, provider, streamed = route or NONE, provider or NONE, "true" if stream else "false"
        tallied = metrics._tallied
        self.requests = tallied(metrics.requests.labels(route, provider, str(status), streamed, api))
        self.duration = tallied(metrics.duration.labels(route, streamed))
        self.attempts = tallied(metrics.attempts.labels(route))
        self.retries = tallied(metrics.retries.labels(route))
        self.failovers = tallied(metrics.failovers.labels(route))
        self.prompt_tokens = tallied(metrics.tokens.labels(route, provider, "prompt"))
        self.completion_tokens = tallied(metrics.tokens.labels(route, provider, "completion"))


class _StreamSeries:
    """The series a relayed stream touches when it ends (route, provider, how it ended)."""

    __slots__ = ("chunk_interval", "first_token", "max_chunk_interval", "streams")

    def __init__(self, metrics: GatewayMetrics, route: str, provider: str, outcome: str) -> None:
        tallied = metrics._tallied
        self.streams = tallied(metrics.streams.labels(route, provider, outcome))
        self.first_token = tallied(metrics.first_token.labels(route, provider))
        self.chunk_interval = tallied(metrics.chunk_interval.labels(route, provider))
        self.max_chunk_interval = tallied(metrics.max_chunk_interval.labels(route, provider))


def forget_dead_workers(directory: str) -> None:
    """Drop the live gauges (open streams, config version) of workers that are gone, so a worker that
    died mid-stream does not count its streams forever. Their counters and histograms stay: what they
    counted did happen. Runs at scrape time: one directory listing."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        found = _LIVE_GAUGE_FILE.search(os.path.basename(path))
        if found is None:
            continue
        pid = int(found.group(1))
        if not process_alive(pid):
            with contextlib.suppress(FileNotFoundError):  # another worker's scrape got there first
                prometheus_multiprocess.mark_process_dead(pid, directory)
