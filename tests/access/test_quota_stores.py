"""Both stores behind one interface: admission, usage commits and reads, persistence, sharing.

The same checks run against SQLite (in memory and on disk) and Redis (the session's own redis-server, a
private key prefix per test, deleted afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from gateway.access.controller import create_store
from gateway.access.keys import KeyLimits
from gateway.access.settings import StoreSettings
from gateway.access.store import StoreUnavailable, UsageBatch, UsageStore
from gateway.access.usage import UsageCounters, UsageKey
from gateway.records import RequestRecord
from tests.support.access_support import redis_keys, redis_prefix
from tests.support.harness import free_port
from tests.support.redis_server import RedisServer

StoreFactory = Callable[[], UsageStore]


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Builds stores that share one backing place: one SQLite file, or one Redis prefix."""
    if request.param == "sqlite":
        yield lambda: create_store(StoreSettings(str(tmp_path / "usage.db")))
        return
    url = request.getfixturevalue("redis_server").url  # only the Redis cases need (or skip for) one
    with redis_prefix(url) as prefix:
        yield lambda: create_store(StoreSettings(url, prefix=prefix))


@contextlib.asynccontextmanager
async def opened(store: UsageStore) -> AsyncIterator[UsageStore]:
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


def usage_batch(*records: RequestRecord, spend: dict[tuple[str, int], int] | None = None) -> UsageBatch:
    batch = UsageBatch(spend=dict(spend or {}))
    for rec in records:
        batch.rows.setdefault(UsageKey.of(rec), UsageCounters()).add(rec)
    return batch


def record(key: str = "team", status: int = 200, duration: float = 0.05, tokens: int = 10) -> RequestRecord:
    return RequestRecord(
        request_id="r",
        model="mock",
        route="mock",
        provider="mock",
        upstream_model="mock",
        stream=False,
        status_code=status,
        attempts=1,
        duration=duration,
        key_name=key,
        usage={"prompt_tokens": tokens, "completion_tokens": 2 * tokens},
    )


async def test_concurrent_admissions_are_exact(make_store: StoreFactory) -> None:
    async with opened(make_store()) as store:
        limits = KeyLimits(requests_per_minute=50)
        results = await asyncio.gather(*(store.admit("team", limits) for _ in range(200)))
        admitted = [result for result in results if result.allowed]
        assert len(admitted) == 50
        assert sorted(result.requests.remaining for result in admitted if result.requests) == list(range(50))
        refused = [result for result in results if not result.allowed]
        assert {result.exceeded for result in refused} == {"requests_per_minute"}
        assert all(0 < result.retry_after <= 60 for result in refused)


async def test_usage_commits_add_up_and_are_read_back(make_store: StoreFactory) -> None:
    async with opened(make_store()) as store:
        await store.commit(usage_batch(record(duration=0.02), record(status=502, duration=0.3)))
        await store.commit(usage_batch(record(duration=0.004), record(key="other")))
        rows = await store.read_usage()
    team = rows[UsageKey("team", "mock", "mock", "mock")]
    assert (team.requests, team.errors, team.prompt_tokens, team.completion_tokens) == (3, 1, 30, 60)
    assert team.latency_min == pytest.approx(0.004) and team.latency_max == pytest.approx(0.3)
    assert team.latency_sum == pytest.approx(0.324) and team.latency_count == 3
    assert rows[UsageKey("other", "mock", "mock", "mock")].requests == 1


async def test_usage_and_daily_spend_survive_a_new_store_instance(make_store: StoreFactory) -> None:
    """A restart (SQLite: the same file; Redis: the same prefix) keeps counters and the daily quota."""
    limits = KeyLimits(tokens_per_day=100)

    async def first_life() -> None:
        async with opened(make_store()) as store:
            assert (await store.admit("team", limits)).allowed
            now = int(time.time())
            await store.commit(usage_batch(record(), spend={("team", now): 150}))
            assert (await store.admit("team", limits)).exceeded == "tokens_per_day"

    async def second_life() -> None:
        async with opened(make_store()) as store:
            rows = await store.read_usage()
            assert rows[UsageKey("team", "mock", "mock", "mock")].requests == 1
            refused = await store.admit("team", limits)
            assert refused.exceeded == "tokens_per_day" and refused.retry_after > 3600

    await first_life()
    await second_life()


async def test_two_store_instances_on_redis_share_one_request_quota(redis_server: RedisServer) -> None:
    """What two gateway processes do: two clients, one prefix; exactly the limit is admitted."""

    async def scenario(prefix: str) -> None:
        settings = StoreSettings(redis_server.url, prefix=prefix)
        async with opened(create_store(settings)) as one, opened(create_store(settings)) as two:
            limits = KeyLimits(requests_per_minute=30)
            calls = [(one if index % 2 else two).admit("team", limits) for index in range(100)]
            results = await asyncio.gather(*calls)
            assert sum(result.allowed for result in results) == 30

    with redis_prefix(redis_server.url) as prefix:
        await scenario(prefix)
        assert redis_keys(redis_server.url, prefix) == [f"{prefix}:limit:team:requests"]


async def test_redis_token_windows_refuse_after_spend_and_report_state(redis_server: RedisServer) -> None:
    async def scenario(prefix: str) -> None:
        async with opened(create_store(StoreSettings(redis_server.url, prefix=prefix))) as store:
            limits = KeyLimits(requests_per_minute=10, tokens_per_minute=100, tokens_per_day=1000)
            first = await store.admit("team", limits)
            assert first.allowed and first.tokens is not None and first.tokens.remaining == 100
            await store.commit(usage_batch(spend={("team", 0): 60}))
            second = await store.admit("team", limits)
            assert second.tokens is not None and second.tokens.remaining == 40 and second.tokens.limit == 100
            assert 59 < second.tokens.reset <= 60
            await store.commit(usage_batch(spend={("team", 0): 45}))
            refused = await store.admit("team", limits)
            assert refused.exceeded == "tokens_per_minute" and 59 < refused.retry_after <= 60
            assert refused.requests is not None and refused.requests.remaining == 8  # not counted

    with redis_prefix(redis_server.url) as prefix:
        await scenario(prefix)


async def test_an_unreachable_redis_is_a_store_error_without_credentials() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"

    store = create_store(StoreSettings(url))
    try:
        with pytest.raises(StoreUnavailable) as caught:
            await store.admit("team", KeyLimits(requests_per_minute=1))
        assert "hunter2" not in str(caught.value)
        assert "hunter2" not in store.description
    finally:
        await store.aclose()


async def test_sqlite_store_writes_off_the_event_loop(tmp_path: Path) -> None:
    """Commits run in a worker thread: the loop keeps answering while a commit is being written."""

    async with opened(create_store(StoreSettings(str(tmp_path / "usage.db")))) as store:
        big = usage_batch(*(record(key=f"k{index}") for index in range(3000)))
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await store.commit(big)
        task.cancel()
        assert ticks > 1
        assert len(await store.read_usage()) == 3000
