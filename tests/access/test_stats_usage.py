"""Usage counters: adding records, merging batches, the latency summary and the /stats document."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.access.keys import make_key
from gateway.access.usage import UsageCounters, UsageKey, latency_bucket, render_stats
from gateway.records import RequestRecord


def record(**changes: Any) -> RequestRecord:
    fields: dict[str, Any] = {
        "request_id": "req_1",
        "model": "mock",
        "route": "mock",
        "provider": "mock",
        "upstream_model": "mock",
        "stream": False,
        "status_code": 200,
        "attempts": 1,
        "duration": 0.040,
        "key_name": "team",
        "usage": {"prompt_tokens": 7, "completion_tokens": 11, "total_tokens": 18},
    }
    fields.update(changes)
    return RequestRecord(**fields)


def test_counters_add_requests_errors_tokens_and_latency() -> None:
    counters = UsageCounters()
    counters.add(record())
    counters.add(record(status_code=502, usage=None, duration=0.2))
    counters.add(record(stream=True, stream_status="error", duration=1.2))
    counters.add(record(status_code=429, attempts=0, usage=None, duration=0.0))  # refused: no latency
    assert (counters.requests, counters.errors) == (4, 3)
    assert (counters.prompt_tokens, counters.completion_tokens) == (14, 22)
    assert counters.latency_count == 3
    assert counters.latency_min == pytest.approx(0.040) and counters.latency_max == pytest.approx(1.2)


def test_a_disconnected_stream_is_not_an_error() -> None:
    counters = UsageCounters()
    counters.add(record(stream=True, stream_status="disconnected"))
    assert counters.errors == 0


def test_merge_is_addition() -> None:
    one, two, both = UsageCounters(), UsageCounters(), UsageCounters()
    for duration in (0.005, 0.3):
        one.add(record(duration=duration))
        both.add(record(duration=duration))
    for duration in (0.002, 70.0):
        two.add(record(duration=duration, status_code=500))
        both.add(record(duration=duration, status_code=500))
    one.merge(two)
    assert one == both
    empty = UsageCounters()
    empty.merge(UsageCounters())
    assert empty.latency_min is None


@pytest.mark.parametrize(
    ("seconds", "bucket"), [(0.0, 0), (0.010, 0), (0.0101, 1), (0.1, 3), (0.7, 6), (60.0, 11), (61.0, 12)]
)
def test_latency_buckets(seconds: float, bucket: int) -> None:
    assert latency_bucket(seconds) == bucket


def test_latency_summary_percentiles_are_bucket_bounds_capped_by_the_maximum() -> None:
    counters = UsageCounters()
    for _ in range(90):
        counters.add(record(duration=0.020))  # bucket <= 25 ms
    for _ in range(9):
        counters.add(record(duration=0.400))  # bucket <= 500 ms
    counters.add(record(duration=3.0))  # bucket <= 5000 ms
    latency = counters.summary()["latency"]
    assert latency["p50_ms"] == 25.0 and latency["p90_ms"] == 25.0
    assert latency["p99_ms"] == 500.0
    assert latency["min_ms"] == 20.0 and latency["max_ms"] == 3000.0
    assert latency["mean_ms"] == pytest.approx((90 * 20 + 9 * 400 + 3000) / 100)
    single = UsageCounters()
    single.add(record(duration=0.003))
    assert single.summary()["latency"]["p99_ms"] == 3.0  # never above the maximum seen


def test_summary_without_latency() -> None:
    counters = UsageCounters()
    counters.add(record(status_code=401, attempts=0, key_name=None, model="", usage=None))
    summary = counters.summary()
    assert summary["requests"] == 1 and summary["errors"] == 1
    assert set(summary["latency"].values()) == {None}


def test_render_stats_groups_by_every_dimension_and_shows_keys_by_fingerprint() -> None:
    rows: dict[UsageKey, UsageCounters] = {}
    for rec in (
        record(),
        record(model="ds", route="deepseek", provider="deepseek"),
        record(key_name="other", provider="backup"),
        record(key_name=None, model="", route=None, provider=None, status_code=401, attempts=0, usage=None),
    ):
        rows.setdefault(UsageKey.of(rec), UsageCounters()).add(rec)
    team = make_key("team", "sk-team-secret")
    stats = render_stats(rows, [team], "sqlite::memory:")
    assert stats["store"] == "sqlite::memory:"
    assert stats["totals"]["requests"] == 4 and stats["totals"]["errors"] == 1
    assert stats["totals"]["total_tokens"] == 3 * 18
    assert set(stats["by_key"]) == {"team", "other", "(no key)"}
    assert stats["by_key"]["team"]["fingerprint"] == team.fingerprint
    assert stats["by_key"]["team"]["requests"] == 2
    assert stats["by_key"]["other"]["fingerprint"] is None  # a key no longer configured
    assert set(stats["by_model"]) == {"mock", "ds"} and stats["by_model"]["mock"]["requests"] == 2
    assert set(stats["by_route"]) == {"mock", "deepseek"}
    assert stats["by_provider"]["mock"]["requests"] == 1 and stats["by_provider"]["backup"]["requests"] == 1
    assert len(stats["rows"]) == 4
    assert {"key": None, "model": None, "route": None, "provider": None}.items() <= stats["rows"][0].items()
    assert "sk-team-secret" not in repr(stats) and team.digest.hex() not in repr(stats)
