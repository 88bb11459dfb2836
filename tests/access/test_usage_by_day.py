"""Usage per UTC day: the recorder's day, `/stats`'s `by_day`, a SQLite file of the schema before days
migrated without losing a row, and Redis rows per day (old rows without a day still read)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from gateway.access.keys import make_key
from gateway.access.limits import DAY_BUCKET
from gateway.access.recorder import UsageRecorder
from gateway.access.redis_store import RedisStore
from gateway.access.settings import StoreSettings
from gateway.access.sqlite_store import SQLiteStore
from gateway.access.store import UsageBatch
from gateway.access.usage import LATENCY_BUCKETS, UsageCounters, UsageKey, render_stats, utc_day
from gateway.records import RequestRecord
from tests.access.test_quota_stores import opened
from tests.support.access_support import redis_prefix
from tests.support.redis_server import RedisServer

NOON = 20_000 * 86_400 + 43_200.0  # 2024-10-04 12:00 UTC
DAY_ONE, DAY_TWO = "2024-10-04", "2024-10-05"
SPEND_BUCKET = int(NOON // DAY_BUCKET)  # a daily token limit's bucket of this morning


def record(key: str = "team", model: str = "mock", cost: int = 1_000, tokens: int = 10) -> RequestRecord:
    return RequestRecord(
        request_id="r",
        model=model,
        route=model,
        provider="sim",
        upstream_model=model,
        stream=False,
        status_code=200,
        attempts=1,
        duration=0.05,
        key_name=key,
        usage={"prompt_tokens": tokens, "completion_tokens": 2 * tokens},
        cost=cost,
        currency="USD",
    )


def batch_of(*rows: tuple[RequestRecord, str]) -> UsageBatch:
    batch = UsageBatch()
    for rec, day in rows:
        batch.rows.setdefault(UsageKey.of(rec, day), UsageCounters()).add(rec)
    return batch


def test_utc_day() -> None:
    assert (
        utc_day(NOON) == DAY_ONE and utc_day(NOON + 43_199.9) == DAY_ONE and utc_day(NOON + 43_200) == DAY_TWO
    )


async def test_the_recorder_counts_each_request_on_its_utc_day() -> None:
    now = [NOON + 43_199.0]  # one second before midnight
    committed: list[UsageBatch] = []

    class Store:
        description = "test"

        async def commit(self, batch: UsageBatch) -> None:
            committed.append(batch)

    recorder = UsageRecorder(Store(), dict, flush_interval=60, clock=lambda: now[0])  # type: ignore[arg-type]
    await recorder.request_finished(record())
    now[0] += 2
    await recorder.request_finished(record())
    await recorder.request_finished(record())
    await recorder.flush()
    [batch] = committed
    assert {row.day: counters.requests for row, counters in batch.rows.items()} == {DAY_ONE: 1, DAY_TWO: 2}


def test_stats_by_day_groups_each_day_and_rows_stay_one_per_key_model_route_provider() -> None:
    rows = batch_of(
        (record(cost=1_000), DAY_ONE),
        (record(cost=2_000), DAY_TWO),
        (record(key="other", model="big", cost=40_000), DAY_TWO),
        (record(cost=500), ""),  # written before days were kept
    ).rows
    team = make_key("team", "sk-team-secret")
    stats = render_stats(rows, [team], "sqlite::memory:")
    assert stats["totals"]["requests"] == 4 and stats["totals"]["cost"] == "0.0000435"
    assert list(stats["by_day"]) == [DAY_ONE, DAY_TWO]  # the day-less row counts in totals only
    one, two = stats["by_day"][DAY_ONE], stats["by_day"][DAY_TWO]
    assert (one["requests"], one["cost"], one["prompt_tokens"]) == (1, "0.000001", 10)
    assert (two["requests"], two["cost"]) == (2, "0.000042")
    assert two["by_key"]["team"] == {
        "fingerprint": team.fingerprint,
        **rows[UsageKey.of(record(), DAY_TWO)].summary(),
    }
    assert two["by_key"]["other"]["cost"] == "0.000040" and two["by_model"]["big"]["requests"] == 1
    assert set(two["by_route"]) == {"mock", "big"} and two["by_provider"]["sim"]["requests"] == 2
    assert [(row["key"], row["model"], row["requests"]) for row in stats["rows"]] == [
        ("other", "big", 1),
        ("team", "mock", 3),
    ]
    assert stats["by_key"]["team"]["requests"] == 3  # the all-time groups are unchanged


# The usage table exactly as the release before per-day usage created it (and, without the last two
# columns, as the one before prices did).
def old_usage_table(with_cost: bool) -> str:
    buckets = ", ".join(f"latency_{index} INTEGER NOT NULL" for index in range(LATENCY_BUCKETS))
    cost = ", cost INTEGER NOT NULL DEFAULT 0, cost_estimated INTEGER NOT NULL DEFAULT 0" if with_cost else ""
    return f"""CREATE TABLE usage (
    key TEXT NOT NULL, model TEXT NOT NULL, route TEXT NOT NULL, provider TEXT NOT NULL,
    requests INTEGER NOT NULL, errors INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    latency_sum REAL NOT NULL, latency_min REAL, latency_max REAL NOT NULL,
    {buckets}{cost},
    PRIMARY KEY (key, model, route, provider)
) WITHOUT ROWID;
CREATE TABLE token_spend (
    key TEXT NOT NULL, bucket INTEGER NOT NULL, tokens INTEGER NOT NULL, PRIMARY KEY (key, bucket)
) WITHOUT ROWID;"""


def write_old_file(path: Path, with_cost: bool) -> None:
    db = sqlite3.connect(path)
    db.executescript(old_usage_table(with_cost))
    buckets = [0] * LATENCY_BUCKETS
    buckets[3] = 4
    columns = "key, model, route, provider, requests, errors, prompt_tokens, completion_tokens, latency_sum, "
    columns += "latency_min, latency_max, " + ", ".join(
        f"latency_{index}" for index in range(LATENCY_BUCKETS)
    )
    values: list[Any] = ["team", "mock", "mock", "sim", 4, 1, 70, 140, 0.32, 0.05, 0.11, *buckets]
    if with_cost:
        columns += ", cost, cost_estimated"
        values += [123_456, 1]
    db.execute(f"INSERT INTO usage ({columns}) VALUES ({', '.join('?' for _ in values)})", values)
    db.execute("INSERT INTO usage (" + columns + ") VALUES (" + ", ".join("?" for _ in values) + ")",
               ["", "mock", "", "", *values[4:]])  # fmt: skip
    db.execute("INSERT INTO token_spend VALUES ('team', ?, 99)", (SPEND_BUCKET,))
    db.commit()
    db.close()


@pytest.mark.parametrize("with_cost", [True, False], ids=["before-days", "before-prices"])
async def test_an_old_sqlite_file_is_migrated_without_losing_a_row(tmp_path: Path, with_cost: bool) -> None:
    path = tmp_path / "usage.db"
    write_old_file(path, with_cost)
    store = SQLiteStore(StoreSettings(str(path)), clock=lambda: NOON)
    async with opened(store):
        rows = await store.read_usage()
        assert set(rows) == {UsageKey("team", "mock", "mock", "sim"), UsageKey("", "mock", "", "")}
        old = rows[UsageKey("team", "mock", "mock", "sim")]
        assert (old.requests, old.errors, old.prompt_tokens, old.completion_tokens) == (4, 1, 70, 140)
        assert (old.latency_sum, old.latency_min, old.latency_max) == (0.32, 0.05, 0.11)
        assert old.latency_buckets[3] == 4 and old.latency_count == 4
        assert (old.cost, old.cost_estimated) == ((123_456, 1) if with_cost else (0, 0))
        await store.commit(batch_of((record(model="mock"), DAY_ONE), (record(model="mock"), DAY_ONE)))
    store = SQLiteStore(StoreSettings(str(path)), clock=lambda: NOON)  # opened again: as it is
    async with opened(store):
        await store.commit(batch_of((record(model="mock"), DAY_ONE), (record(model="mock"), DAY_TWO)))
        rows = await store.read_usage()
    by_day = {row.day: counters for row, counters in rows.items() if row.key == "team"}
    assert set(by_day) == {"", DAY_ONE, DAY_TWO}
    assert by_day[""].requests == 4 and by_day[DAY_ONE].requests == 3 and by_day[DAY_TWO].requests == 1
    assert by_day[DAY_ONE].cost == 3_000
    db = sqlite3.connect(path)
    try:
        key_columns = [row[1] for row in db.execute("PRAGMA table_info(usage)") if row[5]]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        spend = db.execute("SELECT key, bucket, tokens FROM token_spend").fetchall()
    finally:
        db.close()
    assert key_columns == ["key", "model", "route", "provider", "day"]
    assert {"usage", "token_spend"} <= tables and "usage_by_day" not in tables
    assert spend == [("team", SPEND_BUCKET, 99)]  # the other table is not touched


async def test_redis_keeps_rows_per_day_and_reads_rows_written_before_days(redis_server: RedisServer) -> None:
    with redis_prefix(redis_server.url) as prefix:
        store = RedisStore(StoreSettings(redis_server.url, prefix=prefix))
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        try:
            # A row as the release before days wrote it: a 4-part id.
            old_id = json.dumps(["team", "mock", "mock", "sim"], separators=(",", ":"))
            await client.sadd(f"{prefix}:usage:index", old_id)
            await client.hset(f"{prefix}:usage:{old_id}", mapping={"requests": 4, "cost": 500})
            async with opened(store):
                await store.commit(batch_of((record(), DAY_ONE), (record(), DAY_TWO)))
                await store.commit(batch_of((record(cost=7), DAY_TWO)))
                rows = await store.read_usage()
            members = await client.smembers(f"{prefix}:usage:index")
        finally:
            await client.aclose()
    assert {row.day: (counters.requests, counters.cost) for row, counters in rows.items()} == {
        "": (4, 500),
        DAY_ONE: (1, 1_000),
        DAY_TWO: (2, 1_007),
    }
    assert json.dumps(["team", "mock", "mock", "sim", DAY_TWO], separators=(",", ":")) in members
