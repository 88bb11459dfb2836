"""GatewayMetrics: what a scrape shows after requests, streams, reloads; multiprocess sums; its cost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.observe.metrics import GatewayMetrics
from gateway.observe.worker_state import ProviderStatus, ReloadCounts
from gateway.records import RequestRecord

REPO = Path(__file__).resolve().parents[2]


def samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def record(**changes: object) -> RequestRecord:
    values: dict[str, object] = {
        "request_id": "req_1",
        "model": "chat",
        "route": "chat",
        "provider": "deepseek",
        "upstream_model": "deepseek-chat",
        "stream": False,
        "status_code": 200,
        "attempts": 1,
        "duration": 0.2,
        "usage": {"prompt_tokens": 12, "completion_tokens": 30},
    }
    values.update(changes)
    return RequestRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def metrics() -> GatewayMetrics:
    return GatewayMetrics(multiprocess_dir="")


async def test_finished_requests_count_by_route_provider_status_and_tokens(metrics: GatewayMetrics) -> None:
    await metrics.request_finished(record())
    await metrics.request_finished(record(duration=3.0, attempts=3))
    await metrics.request_finished(record(route=None, provider=None, status_code=404, usage=None, attempts=0))
    got = samples(metrics)
    ok = (
        ("api", "chat"),
        ("provider", "deepseek"),
        ("route", "chat"),
        ("status", "200"),
        ("stream", "false"),
    )
    assert got["gateway_requests_total", ok] == 2
    missing = (
        ("api", "chat"),
        ("provider", "none"),
        ("route", "none"),
        ("status", "404"),
        ("stream", "false"),
    )
    assert got["gateway_requests_total", missing] == 1
    assert (
        got["gateway_tokens_total", (("kind", "prompt"), ("provider", "deepseek"), ("route", "chat"))] == 24
    )
    assert (
        got["gateway_tokens_total", (("kind", "completion"), ("provider", "deepseek"), ("route", "chat"))]
        == 60
    )
    duration = (("route", "chat"), ("stream", "false"))
    assert got["gateway_request_duration_seconds_count", duration] == 2
    assert got["gateway_request_duration_seconds_sum", duration] == pytest.approx(3.2)
    assert got["gateway_request_duration_seconds_bucket", (("le", "0.25"), *duration)] == 1
    assert got["gateway_request_attempts_bucket", (("le", "1.0"), ("route", "chat"))] == 1
    assert got["gateway_request_attempts_count", (("route", "chat"),)] == 2


async def test_streams_report_open_count_first_token_and_gaps(metrics: GatewayMetrics) -> None:
    metrics.stream_opened()
    metrics.stream_opened()
    assert samples(metrics)["gateway_open_streams", ()] == 2
    ended = record(
        stream=True,
        stream_status="ok",
        time_to_first_chunk=0.1,
        chunks=5,
        chunk_interval=0.1,  # 0.4 s over 4 gaps
        max_chunk_interval=0.3,
    )
    await metrics.request_finished(ended)
    # A stream that failed before its first event was never opened: it must not close one.
    await metrics.request_finished(record(stream=True, status_code=502, usage=None))
    got = samples(metrics)
    labels = (("provider", "deepseek"), ("route", "chat"))
    assert got["gateway_open_streams", ()] == 1
    assert got["gateway_streams_total", (("outcome", "ok"), *labels)] == 1
    assert got["gateway_stream_chunk_interval_seconds_sum", labels] == pytest.approx(0.1)  # 0.4 s / 4 gaps
    assert got["gateway_stream_max_chunk_interval_seconds_sum", labels] == pytest.approx(0.3)
    assert got["gateway_time_to_first_token_seconds_count", labels] == 1


async def test_retries_failovers_and_reloads_are_counted(metrics: GatewayMetrics) -> None:
    await metrics.request_finished(record(attempts=3, retries=2))
    await metrics.request_finished(record(attempts=2, failovers=1))
    counts = {"applied": 0, "rejected": 0}
    metrics.watch_reloads(lambda: ReloadCounts(**counts))
    metrics.config_loaded("abc123")
    counts["rejected"] += 1
    counts["applied"] += 1
    metrics.config_loaded("def456")
    got = samples(metrics)
    assert got["gateway_retries_total", (("route", "chat"),)] == 2
    assert got["gateway_failovers_total", (("route", "chat"),)] == 1
    assert got["gateway_config_reloads_total", (("result", "failed"),)] == 1
    assert got["gateway_config_reloads_total", (("result", "ok"),)] == 1
    assert got["gateway_config_info", (("version", "def456"),)] == 1
    assert ("gateway_config_info", (("version", "abc123"),)) not in got


def test_provider_state_is_read_at_scrape_time(metrics: GatewayMetrics) -> None:
    state = {"breaker": "closed"}
    metrics.watch_providers(lambda: [ProviderStatus("deepseek", True, True, state["breaker"])])
    assert (
        samples(metrics)["gateway_provider_breaker_state", (("provider", "deepseek"), ("state", "closed"))]
        == 1
    )
    state["breaker"] = "open"
    got = samples(metrics)
    assert got["gateway_provider_breaker_state", (("provider", "deepseek"), ("state", "open"))] == 1
    assert got["gateway_provider_breaker_state", (("provider", "deepseek"), ("state", "closed"))] == 0
    assert got["gateway_provider_healthy", (("provider", "deepseek"),)] == 1


def test_multiprocess_mode_sums_every_worker(tmp_path: Path) -> None:
    worker = textwrap.dedent("""
        import asyncio, sys
        from gateway.observe.metrics import GatewayMetrics
        from gateway.records import RequestRecord
        metrics = GatewayMetrics()
        for _ in range(int(sys.argv[1])):
            asyncio.run(metrics.request_finished(RequestRecord(
                "r", "chat", "chat", "deepseek", None, False, 200, 1, 0.1)))
        metrics.stream_opened()
        if len(sys.argv) > 2:
            sys.stdout.write(metrics.render()[0].decode())
    """)
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for count in ("3", "4"):
        subprocess.run([sys.executable, "-c", worker, count], cwd=REPO, env=env, check=True, timeout=60)
    scrape = subprocess.run(
        [sys.executable, "-c", worker, "0", "render"],
        cwd=REPO,
        env=env,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    ).stdout
    got = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
    }
    labels = (
        ("api", "chat"),
        ("provider", "deepseek"),
        ("route", "chat"),
        ("status", "200"),
        ("stream", "false"),
    )
    assert got["gateway_requests_total", labels] == 7
    # livesum: the two exited workers' open streams are forgotten at the scrape, the live one's counts.
    assert got["gateway_open_streams", ()] == 1


def test_tallies_leave_exactly_what_direct_observations_would() -> None:
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from gateway.observe.metrics import INTERVAL_BUCKETS
    from gateway.observe.tally import CountTally, HistogramTally

    registry = CollectorRegistry()
    histogram = Histogram("h", "h", ["way"], buckets=INTERVAL_BUCKETS, registry=registry)
    counter = Counter("c", "c", ["way"], registry=registry)
    tallied, tallied_count = HistogramTally(histogram.labels("tally")), CountTally(counter.labels("tally"))
    values = [0.0, 0.001, 0.0011, 0.0025, 0.003, 0.1, 4.99, 5.0, 5.01, 1e9, 0.042]  # on, around, past bounds
    for round_ in range(2):  # two flushes: the second must add to the first, not replace it
        for value in values:
            tallied.observe(value)
            histogram.labels("direct").observe(value)
            tallied_count.inc(value)
            counter.labels("direct").inc(value)
        tallied.flush()
        tallied_count.flush()
        tallied.flush()  # a flush with nothing pending changes nothing

        def samples(way: str) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
            return sorted(
                (
                    sample.name,
                    tuple(sorted((k, v) for k, v in sample.labels.items() if k != "way")),
                    sample.value,
                )
                for family in registry.collect()
                for sample in family.samples
                if sample.labels.get("way") == way and not sample.name.endswith("_created")
            )

        tally, direct = samples("tally"), samples("direct")
        assert [(name, labels) for name, labels, _ in tally] == [(name, labels) for name, labels, _ in direct]
        # Bucket counts exactly; sums up to float rounding (one addition per flush, not per value).
        assert [value for *_, value in tally] == pytest.approx([value for *_, value in direct], rel=1e-12)
        assert [v for n, _, v in tally if n.endswith("_bucket")] == [
            v for n, _, v in direct if n.endswith("_bucket")
        ], round_
