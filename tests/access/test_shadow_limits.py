"""Shadow mode below HTTP: the config shape, what a shadow limit counts in its window (with a clock the
test moves, and on Redis), and the once-per-key-and-minute log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
import redis

from gateway.access.controller import create_store
from gateway.access.keys import KeyLimits
from gateway.access.local_limiter import LocalLimiter
from gateway.access.settings import StoreSettings, build_access_settings
from gateway.access.shadow import ShadowCounts
from tests.support.access_support import redis_prefix
from tests.support.redis_server import RedisServer

SECRET = "sha256:" + "a" * 64


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ({"requests_per_minute": 5}, KeyLimits(requests_per_minute=5)),
        (
            {"mode": "shadow", "requests_per_minute": 5, "tokens_per_day": 9},
            KeyLimits(5, None, 9, frozenset({"requests_per_minute", "tokens_per_day"})),
        ),
        (
            {"mode": "shadow", "requests_per_minute": 5, "tokens_per_day": {"limit": 9, "mode": "enforce"}},
            KeyLimits(5, None, 9, frozenset({"requests_per_minute"})),
        ),
        (
            {"requests_per_minute": 5, "tokens_per_minute": {"limit": 7, "mode": "shadow"}},
            KeyLimits(5, 7, None, frozenset({"tokens_per_minute"})),
        ),
        ({"mode": "enforce", "tokens_per_minute": {"limit": 7}}, KeyLimits(tokens_per_minute=7)),
    ],
    ids=["plain", "block-shadow", "one-enforced", "one-shadow", "object-default"],
)
def test_the_limits_block_and_its_modes(limits: dict[str, object], expected: KeyLimits) -> None:
    [key] = build_access_settings({"keys": {"team": {"secret": SECRET, "limits": limits}}}, {}).keys.keys
    assert key.limits == expected


def test_a_would_block_is_not_counted_in_the_window() -> None:
    """2 admitted at t=0, 3 over the limit at t=30: at t=60.5 the first two have left the window and the
    next request is under the limit (had the would-blocks been counted, it would be over until t=90)."""
    clock = Clock()
    limiter = LocalLimiter(clock)
    limits = KeyLimits(requests_per_minute=2, shadow=frozenset({"requests_per_minute"}))
    start = clock.now
    assert [limiter.admit("team", limits).would_block for _ in range(2)] == [(), ()]
    clock.now = start + 30
    over = [limiter.admit("team", limits) for _ in range(3)]
    assert all(a.allowed and a.would_block == ("requests_per_minute",) for a in over)
    assert all(a.requests is not None and a.requests.remaining == 0 for a in over)
    clock.now = start + 60.5
    again = limiter.admit("team", limits)
    assert again.allowed and again.would_block == ()
    assert again.requests is not None and again.requests.remaining == 1


def test_a_shadow_token_limit_admits_over_its_spend() -> None:
    clock = Clock()
    limiter = LocalLimiter(clock)
    limits = KeyLimits(requests_per_minute=10, tokens_per_minute=30, shadow=frozenset({"tokens_per_minute"}))
    assert limiter.admit("team", limits).would_block == ()
    limiter.spend("team", 40, clock.now)
    over = limiter.admit("team", limits)
    assert over.allowed and over.would_block == ("tokens_per_minute",)
    assert over.tokens is not None and over.tokens.remaining == 0
    assert over.requests is not None and over.requests.remaining == 8  # it still counts as a request


def test_a_request_refused_for_real_is_no_would_block() -> None:
    limiter = LocalLimiter(Clock())
    limits = KeyLimits(requests_per_minute=1, tokens_per_minute=30, shadow=frozenset({"tokens_per_minute"}))
    limiter.admit("team", limits)
    limiter.spend("team", 40, Clock()())
    refused = limiter.admit("team", limits)
    assert not refused.allowed and refused.exceeded == "requests_per_minute" and refused.would_block == ()


@pytest.fixture
def redis_settings(redis_server: RedisServer) -> Iterator[StoreSettings]:
    with redis_prefix(redis_server.url) as prefix:
        yield StoreSettings(redis_server.url, prefix=prefix)


async def test_redis_counts_200_concurrent_admissions_against_50(redis_settings: StoreSettings) -> None:
    limits = KeyLimits(requests_per_minute=50, shadow=frozenset({"requests_per_minute"}))
    stores = [create_store(redis_settings) for _ in range(2)]  # two "processes" on one Redis
    for store in stores:
        await store.open()
    try:
        admissions = await asyncio.gather(*(stores[i % 2].admit("team", limits) for i in range(200)))
    finally:
        for store in stores:
            await store.aclose()
    assert all(admission.allowed for admission in admissions)
    assert sum(admission.would_block == ("requests_per_minute",) for admission in admissions) == 150
    with redis.Redis.from_url(redis_settings.url) as client:  # the window holds the 50 admitted only
        assert client.zcard(f"{redis_settings.prefix}:limit:team:requests") == 50


async def test_redis_enforced_limits_are_unchanged_by_a_shadow_one(redis_settings: StoreSettings) -> None:
    limits = KeyLimits(requests_per_minute=2, tokens_per_day=5, shadow=frozenset({"tokens_per_day"}))
    store = create_store(redis_settings)
    await store.open()
    try:
        first, second, third = [await store.admit("team", limits) for _ in range(3)]
    finally:
        await store.aclose()
    assert first.allowed and second.allowed and first.would_block == second.would_block == ()
    assert not third.allowed and third.exceeded == "requests_per_minute" and third.would_block == ()


def test_would_blocks_are_counted_and_logged_once_per_key_and_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.access")
    clock = Clock(100.0)
    counts = ShadowCounts(clock)
    for _ in range(3):
        counts.observed("team", ("requests_per_minute",))
    counts.observed("other", ("tokens_per_minute", "requests_per_minute"))
    counts.observed("team", ())  # nothing over a limit: nothing counted, nothing logged
    clock.now += 59.0
    counts.observed("team", ("requests_per_minute",))
    clock.now += 1.0
    counts.observed("team", ("tokens_per_day",))
    assert counts.counts() == {
        ("team", "requests_per_minute"): 4,
        ("team", "tokens_per_day"): 1,
        ("other", "tokens_per_minute"): 1,
        ("other", "requests_per_minute"): 1,
    }
    assert [record.getMessage() for record in caplog.records] == [
        "key team would have been limited by requests_per_minute (shadow)",
        "key other would have been limited by tokens_per_minute and requests_per_minute (shadow)",
        "key team would have been limited by tokens_per_day (shadow)",
    ]
