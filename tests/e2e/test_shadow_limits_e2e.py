"""Limits in shadow mode over real sockets: nothing is refused, and the would-block counter says exactly how
many requests the limit would have refused (memory, SQLite and Redis stores, two processes on one Redis);
an enforced limit next to a shadow one still refuses, and its refusals are no would-blocks."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from gateway.access.keys import hash_secret
from tests.e2e.test_quota_e2e import post_many
from tests.support.access_support import CHAT_BODY, bearer, keyed_routes_yaml, redis_prefix
from tests.support.harness import CLIENT_TIMEOUT, gateway_process, running_gateway
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.timeout(120)

TEAM_KEY = "sk-gw-shadow-team-key"
ADMIN_KEY = "sk-gw-shadow-admin-key"
WOULD_BLOCK = "gateway_limit_would_block_total"
SHADOW_LINE = "key team would have been limited by requests_per_minute (shadow)"


def keys_yaml(limits: str) -> str:
    return (
        f"team: {{secret: {hash_secret(TEAM_KEY)}, limits: {limits}}}\n"
        f"admin: {{secret: {hash_secret(ADMIN_KEY)}, role: admin}}\n"
    )


@contextlib.contextmanager
def store_settings(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The `settings:` body for the memory store, a SQLite file or a private Redis prefix."""
    if kind == "memory":
        yield "stats_store: memory\n"
    elif kind == "sqlite":
        yield f"stats_store: {tmp_path / 'usage.db'}\n"
    else:
        url = request.getfixturevalue("redis_server").url
        with redis_prefix(url) as prefix:
            yield f"stats_store: {url}\nstats_store_prefix: {prefix}\n"


def redis_keys_zcard(url: str, key: str) -> int:
    """Members of the sorted set `key`: the requests a window holds."""
    with redis.Redis.from_url(url) as client:
        return int(client.zcard(key))


def would_block(base_url: str) -> dict[tuple[str, str], float]:
    """gateway_limit_would_block_total by (key, limit), scraped with the admin key."""
    response = httpx.get(f"{base_url}/metrics", headers=bearer(ADMIN_KEY), timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200, response.text
    return {
        (sample.labels["key"], sample.labels["limit"]): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == WOULD_BLOCK
    }


@pytest.mark.parametrize("store", ["memory", "sqlite", "redis"])
async def test_200_concurrent_requests_pass_and_150_would_have_been_refused(
    store: str,
    write_routes: Callable[..., Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.access")
    with store_settings(store, tmp_path, request) as settings:
        config_dir = write_routes(
            keyed_routes_yaml(keys_yaml("{mode: shadow, requests_per_minute: 50}"), settings_yaml=settings)
        )
        with running_gateway(config_dir) as gateway:
            responses = await post_many([f"{gateway.base_url}/v1/chat/completions"] * 200, TEAM_KEY)
            assert [response.status_code for response in responses] == [200] * 200
            assert would_block(gateway.base_url) == {("team", "requests_per_minute"): 150.0}
            # Would-blocks stay out of the window: it holds the 50 the limit would have let through.
            late = httpx.post(
                f"{gateway.base_url}/v1/chat/completions",
                json=CHAT_BODY,
                headers=bearer(TEAM_KEY),
                timeout=CLIENT_TIMEOUT,
            )
            assert late.status_code == 200
            assert would_block(gateway.base_url) == {("team", "requests_per_minute"): 151.0}
    # The headers say what enforcing would: 49, 48, ... 0 left, then 0 for everything over the limit.
    remaining = sorted(int(response.headers["x-ratelimit-remaining-requests"]) for response in responses)
    assert remaining == [0] * 151 + list(range(1, 50))
    assert {response.headers["x-ratelimit-limit-requests"] for response in responses} == {"50"}
    assert not any("retry-after" in response.headers for response in responses)
    assert caplog.text.count(SHADOW_LINE) == 1  # once per key and minute


async def test_two_gateway_processes_on_one_redis_count_the_shared_window(
    write_routes: Callable[..., Path], redis_server: RedisServer
) -> None:
    with redis_prefix(redis_server.url) as prefix:
        settings = f"stats_store: {redis_server.url}\nstats_store_prefix: {prefix}\n"
        config_dir = write_routes(
            keyed_routes_yaml(keys_yaml("{mode: shadow, requests_per_minute: 50}"), settings_yaml=settings)
        )
        with gateway_process(config_dir) as one, gateway_process(config_dir) as two:
            urls = [f"{(one, two)[index % 2].base_url}/v1/chat/completions" for index in range(200)]
            responses = await post_many(urls, TEAM_KEY)
            assert [response.status_code for response in responses] == [200] * 200
            counts = [would_block(gateway.base_url) for gateway in (one, two)]
            per_process = [count.get(("team", "requests_per_minute"), 0.0) for count in counts]
            assert sum(per_process) == 150  # each process counts its own; the sum is the shared window's
            assert redis_keys_zcard(redis_server.url, f"{prefix}:limit:team:requests") == 50
            for gateway, count in zip((one, two), per_process, strict=True):
                assert gateway.log_text().count(SHADOW_LINE) == (1 if count else 0)


async def test_an_enforced_limit_next_to_a_shadow_one_still_refuses(
    write_routes: Callable[..., Path],
) -> None:
    """`mode: shadow` for the block, `{limit, mode: enforce}` for one limit: that one refuses as before,
    and a request it refuses is no would-block of the shadow limit (nor counted in its window)."""
    limits = "{mode: shadow, requests_per_minute: 1, tokens_per_day: {limit: 1, mode: enforce}}"
    config_dir = write_routes(
        keyed_routes_yaml(keys_yaml(limits), settings_yaml="stats_flush_interval: 0.05\n")
    )
    with running_gateway(config_dir) as gateway:
        async with openai.AsyncOpenAI(
            base_url=f"{gateway.base_url}/v1", api_key=TEAM_KEY, max_retries=0, timeout=CLIENT_TIMEOUT
        ) as client:
            admitted = 0
            deadline = time.monotonic() + 10
            # The mock's answer spends tokens; until its usage lands with a flush, requests pass.
            while time.monotonic() < deadline:
                try:
                    await client.chat.completions.create(model="mock", messages=CHAT_BODY["messages"])
                except openai.RateLimitError as refused:
                    assert refused.code == "rate_limit_exceeded"
                    assert refused.response.json()["error"]["type"] == "tokens"
                    break
                admitted += 1
            else:
                pytest.fail("the enforced tokens_per_day limit never refused")
            for _ in range(5):  # refused for real: no would-blocks
                with pytest.raises(openai.RateLimitError):
                    await client.chat.completions.create(model="mock", messages=CHAT_BODY["messages"])
        counts = would_block(gateway.base_url)
    # Every admitted request after the first was over the shadow requests_per_minute; no refused one.
    assert counts == ({("team", "requests_per_minute"): admitted - 1.0} if admitted > 1 else {})
