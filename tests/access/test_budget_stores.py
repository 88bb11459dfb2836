"""Budgets in every store, in-process: 200 concurrent admissions against a budget that fits exactly 50, in
20 of 20 rounds (memory, SQLite file, Redis, and two Redis stores sharing one prefix as two replicas);
settled spend equals the sum of the real costs; shadow budgets; hold expiry; persistence across restarts."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from gateway.access import redis_budgets
from gateway.access.controller import create_store
from gateway.access.keys import KeyLimits
from gateway.access.settings import StoreSettings
from gateway.access.store import Settlement, UsageBatch, UsageStore
from gateway.config.budget_models import Budget
from tests.support.access_support import redis_prefix

pytestmark = pytest.mark.timeout(120)

COST = 5_000_000  # nano-units of one request's maximum cost (0.005)
ROUNDS = 20

StoreFactory = Callable[[], UsageStore]


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Stores that share one backing place: memory (one store only), one SQLite file, one Redis prefix."""
    if request.param == "memory":
        yield lambda: create_store(StoreSettings("memory"))
    elif request.param == "sqlite":
        yield lambda: create_store(StoreSettings(str(tmp_path / "usage.db")))
    else:
        url = request.getfixturevalue("redis_server").url
        with redis_prefix(url) as prefix:
            yield lambda: create_store(StoreSettings(url, prefix=prefix))


@contextlib.asynccontextmanager
async def opened(*stores: UsageStore) -> AsyncIterator[None]:
    for store in stores:
        await store.open()
    try:
        yield
    finally:
        for store in stores:
            await store.aclose()


def day_budget(limit: int, *, shadow: bool = False) -> KeyLimits:
    return KeyLimits(budgets=(Budget("budget_per_day", limit, shadow=shadow),))


async def settle_all(
    store: UsageStore, key: str, limits: KeyLimits, held: list[str | None], costs: list[int]
) -> None:
    """What the controller does at each request's end: settle at once in the store, then commit the batch."""
    batch = UsageBatch()
    for hold_id, cost in zip(held, costs, strict=True):
        settlement = Settlement(key, limits.budgets, hold_id, cost, time.time())
        store.settle(settlement)
        batch.settlements.append(settlement)
    await store.commit(batch)


async def test_200_concurrent_requests_hold_exactly_50_in_20_of_20_rounds(make_store: StoreFactory) -> None:
    store = make_store()
    rng = random.Random(17)
    async with opened(store):
        for round_number in range(ROUNDS):
            key = f"team-{round_number}"  # a fresh budget each round
            limits = day_budget(50 * COST)
            admissions = await asyncio.gather(*(store.admit(key, limits, COST) for _ in range(200)))
            admitted = [admission for admission in admissions if admission.allowed]
            assert len(admitted) == 50, f"round {round_number}: {len(admitted)} admitted"
            assert all(admission.hold_id for admission in admitted)
            refused = [admission for admission in admissions if not admission.allowed]
            assert all(a.budget and a.budget.exceeded and a.retry_after > 0 for a in refused)
            (state,) = await store.read_budgets(key, limits.budgets)
            assert (state.spent, state.reserved) == (0, 50 * COST)
            # Settle with real costs at or below the maximum: spend is their exact sum, holds are gone.
            costs = [rng.randint(0, COST) for _ in admitted]
            await settle_all(store, key, limits, [a.hold_id for a in admitted], costs)
            (state,) = await store.read_budgets(key, limits.budgets)
            assert (state.spent, state.reserved) == (sum(costs), 0), f"round {round_number}"


async def test_two_redis_replicas_share_one_budget(redis_server: object) -> None:
    url = redis_server.url  # type: ignore[attr-defined]
    with redis_prefix(url) as prefix:
        one, two = (create_store(StoreSettings(url, prefix=prefix)) for _ in range(2))
        async with opened(one, two):
            for round_number in range(ROUNDS):
                key = f"team-{round_number}"
                limits = day_budget(50 * COST)
                admissions = await asyncio.gather(
                    *((one, two)[index % 2].admit(key, limits, COST) for index in range(200))
                )
                admitted = [a for a in admissions if a.allowed]
                assert len(admitted) == 50, f"round {round_number}"
                costs = [COST - index for index in range(50)]
                await settle_all(one, key, limits, [a.hold_id for a in admitted[:25]], costs[:25])
                await settle_all(two, key, limits, [a.hold_id for a in admitted[25:]], costs[25:])
                (state,) = await two.read_budgets(key, limits.budgets)
                assert (state.spent, state.reserved) == (sum(costs), 0)


async def test_a_shadow_budget_admits_all_and_holds_only_what_it_would_have_let_through(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    limits = day_budget(50 * COST, shadow=True)
    async with opened(store):
        admissions = await asyncio.gather(*(store.admit("team", limits, COST) for _ in range(200)))
        assert all(admission.allowed for admission in admissions)
        assert sum("budget_per_day" in a.would_block for a in admissions) == 150
        (state,) = await store.read_budgets("team", limits.budgets)
        assert state.reserved == 50 * COST  # would-blocks hold nothing against the shadow budget
        # Every admitted request ran: all of them settle, and all their spend counts.
        await settle_all(store, "team", limits, [a.hold_id for a in admissions], [COST] * 200)
        (state,) = await store.read_budgets("team", limits.budgets)
        assert (state.spent, state.reserved) == (200 * COST, 0)


async def test_a_request_refused_on_requests_holds_nothing(make_store: StoreFactory) -> None:
    store = make_store()
    limits = KeyLimits(requests_per_minute=1, budgets=(Budget("budget_per_day", 50 * COST),))
    async with opened(store):
        first, second = [await store.admit("team", limits, COST) for _ in range(2)]
        assert first.allowed and not second.allowed and second.exceeded == "requests_per_minute"
        (state,) = await store.read_budgets("team", limits.budgets)
        assert state.reserved == COST


async def test_a_request_refused_on_budget_takes_no_request_slot(make_store: StoreFactory) -> None:
    store = make_store()
    limits = KeyLimits(requests_per_minute=2, budgets=(Budget("budget_per_day", COST),))
    async with opened(store):
        assert (await store.admit("team", limits, COST)).allowed
        refused = await store.admit("team", limits, COST)
        assert not refused.allowed and refused.budget is not None and refused.budget.exceeded is not None
        assert refused.requests is not None and refused.requests.remaining == 1  # only the first counted


async def test_redis_holds_of_a_crashed_replica_expire(
    redis_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_budgets, "HOLD_MS", 200)
    url = redis_server.url  # type: ignore[attr-defined]
    with redis_prefix(url) as prefix:
        crashed, alive = (create_store(StoreSettings(url, prefix=prefix)) for _ in range(2))
        limits = day_budget(COST)
        async with opened(crashed, alive):
            assert (await crashed.admit("team", limits, COST)).allowed  # never settled
            assert not (await alive.admit("team", limits, COST)).allowed
            await asyncio.sleep(0.3)
            assert (await alive.admit("team", limits, COST)).allowed


async def test_sqlite_keeps_budget_spend_across_a_restart(tmp_path: Path) -> None:
    settings = StoreSettings(str(tmp_path / "usage.db"))
    limits = KeyLimits(
        budgets=(Budget("budget_per_month", 10 * COST), Budget("budget_per_window", 10 * COST, window=3600))
    )
    first = create_store(settings)
    async with opened(first):
        admission = await first.admit("team", limits, COST)
        await settle_all(first, "team", limits, [admission.hold_id], [3 * COST])
    second = create_store(settings)
    async with opened(second):
        states = await second.read_budgets("team", limits.budgets)
        assert [(state.spent, state.reserved) for state in states] == [(3 * COST, 0), (3 * COST, 0)]
