"""Per-day usage rows are kept `settings.stats_retention_days` (default 400): older days are deleted once
an hour, on SQLite (file and memory) and Redis alike, so `/stats` (which reads every row) stays bounded.
Rows written before days were kept (day "") stay."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest

from gateway.access.recorder import PRUNE_INTERVAL, UsageRecorder
from gateway.access.redis_store import RedisStore
from gateway.access.settings import StoreSettings
from gateway.access.sqlite_store import SQLiteStore
from gateway.access.store import UsageStore
from gateway.access.usage import UsageCounters, UsageKey
from gateway.config import load_config_or_raise
from gateway.config.models import DEFAULT_RETENTION_DAYS
from gateway.errors import ConfigError
from tests.access.test_quota_stores import opened
from tests.access.test_usage_by_day import NOON, batch_of, record
from tests.support.access_support import redis_prefix
from tests.support.redis_server import RedisServer

DAYS = ("2023-01-01", "2024-09-03", "2024-09-04", "2024-10-04")  # the cut below is 2024-09-04


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return str(tmp_path / "usage.sqlite3")
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


def open_store(url: str, prefix: str) -> UsageStore:
    settings = StoreSettings(url, prefix=prefix)
    return RedisStore(settings) if url.startswith("redis://") else SQLiteStore(settings)


async def test_days_before_the_cut_are_deleted_and_undated_rows_stay(store_url: str) -> None:
    with contextlib.ExitStack() as stack:
        prefix = stack.enter_context(redis_prefix(store_url)) if store_url.startswith("redis://") else "gw"
        store = open_store(store_url, prefix)
        async with opened(store):
            await store.commit(batch_of(*((record(), day) for day in (*DAYS, ""))))
            assert await store.prune("2024-09-04") == 2
            rows = await store.read_usage()
            assert await store.prune("2024-09-04") == 0  # nothing left to delete
    assert sorted(row.day for row in rows) == ["", "2024-09-04", "2024-10-04"]


class CountingStore:
    description = "test"

    def __init__(self, fail: bool = False) -> None:
        self.cuts: list[str] = []
        self.fail = fail

    async def prune(self, before_day: str) -> int:
        self.cuts.append(before_day)
        if self.fail:
            raise OSError("store down")
        return 3

    async def read_usage(self) -> dict[UsageKey, UsageCounters]:
        return {}


async def test_the_recorder_prunes_at_start_then_once_an_hour_at_its_retention(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [NOON]
    store = CountingStore()
    recorder = UsageRecorder(store, dict, 1.0, clock=lambda: now[0], retention_days=30)  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        await recorder.prune()
        now[0] += PRUNE_INTERVAL - 1
        await recorder.prune()  # within the hour: nothing asked
        now[0] += 1
        await recorder.prune()
    assert store.cuts == ["2024-09-04", "2024-09-04"]  # 30 days before 2024-10-04 (and an hour later)
    assert "deleted 3 usage rows of days before 2024-09-04" in caplog.text


async def test_a_store_that_cannot_prune_is_logged_and_asked_again_an_hour_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [NOON]
    store = CountingStore(fail=True)
    recorder = UsageRecorder(store, dict, 1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="gateway.access"):
        await recorder.prune()
        await recorder.prune()
        now[0] += PRUNE_INTERVAL
        await recorder.prune()
    assert len(store.cuts) == 2 and "deleting the days before" in caplog.text and "store down" in caplog.text
    assert store.cuts[0] == "2023-08-31"  # the default retention: 400 days
    assert DEFAULT_RETENTION_DAYS == 400


def test_the_retention_is_a_setting(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "providers: {mock: {type: mock}}\nsettings: {stats_retention_days: 35}\n"
    )
    assert load_config_or_raise([tmp_path], {}).access.store.retention_days == 35
    (tmp_path / "a.yaml").write_text("providers: {mock: {type: mock}}\n")
    assert load_config_or_raise([tmp_path], {}).access.store.retention_days == 400
    (tmp_path / "a.yaml").write_text("providers: {mock: {type: mock}}\nsettings: {stats_retention_days: 0}\n")
    with pytest.raises(ConfigError, match="stats_retention_days"):
        load_config_or_raise([tmp_path], {})
