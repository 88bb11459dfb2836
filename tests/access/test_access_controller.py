"""The controller and the usage observer against stores that fail: requests go on, usage is kept."""

from __future__ import annotations

import logging
import time

import pytest

from gateway.access import store_guard
from gateway.access.controller import AccessController, create_store
from gateway.access.keys import KeyLimits, make_key
from gateway.access.limits import Admission
from gateway.access.recorder import UsageRecorder
from gateway.access.settings import StoreSettings, build_access_settings
from gateway.access.store import StoreUnavailable, UsageBatch
from gateway.access.usage import UsageCounters, UsageKey
from gateway.config.models import RouteConfig, Target
from gateway.errors import LimitsUnavailable, PermissionDenied, RateLimited, Unauthorized
from gateway.records import RequestRecord
from gateway.routing.table import RouteMatch

MATCH = RouteMatch(RouteConfig("mock", "mock", (Target("mock"),)), "exact", "mock")


class ScriptedStore:
    """A store whose admissions and commits fail while `down` is set."""

    description = "scripted"

    def __init__(self) -> None:
        self.down = False
        self.admitted = 0
        self.committed: list[UsageBatch] = []

    async def open(self) -> None:
        pass

    async def admit(self, key: str, limits: KeyLimits) -> Admission:
        if self.down:
            raise StoreUnavailable("ConnectionError: connection refused")
        self.admitted += 1
        return Admission(True)

    async def commit(self, batch: UsageBatch) -> None:
        if self.down:
            raise StoreUnavailable("ConnectionError: connection refused")
        self.committed.append(batch)

    async def prune(self, before_day: str) -> int:
        return 0

    async def read_usage(self) -> dict[UsageKey, UsageCounters]:
        rows: dict[UsageKey, UsageCounters] = {}
        for batch in self.committed:
            for row, counters in batch.rows.items():
                rows.setdefault(row, UsageCounters()).merge(counters)
        return rows

    async def aclose(self) -> None:
        pass


def controller(store: ScriptedStore, mode: str | None = None) -> AccessController:
    extras: dict[str, object] = {
        "keys": {
            "team": {"secret": "sk-team", "models": ["mock"], "limits": {"requests_per_minute": 1}},
            "free": {"secret": "sk-free"},
        }
    }
    if mode is not None:
        extras["settings"] = {"store_failure_mode": mode}
    return AccessController(build_access_settings(extras, {}), store)  # type: ignore[arg-type]


def record(key: str | None = "team") -> RequestRecord:
    return RequestRecord(
        "r", "mock", "mock", "mock", "mock", False, 200, 1, 0.01, key, usage={"prompt_tokens": 3}
    )


async def test_authenticate_and_admit_errors() -> None:
    access = controller(ScriptedStore())
    with pytest.raises(Unauthorized):
        access.authenticate({})
    with pytest.raises(Unauthorized):
        access.authenticate({"authorization": "Bearer sk-nope"})
    key = access.authenticate({"x-api-key": "sk-team"})
    assert key.name == "team"
    other = RouteMatch(RouteConfig("other", "other", (Target("mock"),)), "exact", "other")
    with pytest.raises(PermissionDenied):
        await access.admit(key, other)
    with pytest.raises(PermissionDenied, match="admin"):
        access.admin_key({"x-api-key": "sk-team"})


async def test_a_key_without_limits_never_touches_the_store() -> None:
    store = ScriptedStore()
    access = controller(store)
    assert await access.admit(access.authenticate({"x-api-key": "sk-free"}), MATCH) is None
    assert store.admitted == 0


async def test_a_local_limit_refusal_is_a_rate_limited_error() -> None:
    access = AccessController(
        build_access_settings({"keys": {"t": {"secret": "s", "limits": {"requests_per_minute": 1}}}}, {}),
        create_store(StoreSettings()),
    )

    await access.start()
    try:
        key = access.authenticate({"x-api-key": "s"})
        headers = await access.admit(key, MATCH)
        assert headers is not None and headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(RateLimited) as caught:
            await access.admit(key, MATCH)
        assert caught.value.headers["x-ratelimit-limit-requests"] == "1"
    finally:
        await access.aclose()


async def test_fail_open_admits_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    store = ScriptedStore()
    access = controller(store, "fail_open")
    key = access.authenticate({"x-api-key": "sk-team"})
    store.down = True
    with caplog.at_level(logging.ERROR, logger="gateway.access"):
        for _ in range(5):
            assert await access.admit(key, MATCH) is None  # admitted without limit headers
    failures = [r for r in caplog.records if "admitting requests without limits" in r.getMessage()]
    assert len(failures) == 1  # throttled: one line per interval, not one per request
    assert "sk-team" not in caplog.text
    assert access.store_guard.unavailable == 5
    assert access.store_guard.state()["state"] == "unavailable"


async def test_fail_closed_refuses_a_limited_key_and_asks_the_store_again_after_a_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = ScriptedStore()
    access = controller(store)  # the default mode
    assert access.store_guard.mode == "fail_closed"
    team = access.authenticate({"x-api-key": "sk-team"})
    free = access.authenticate({"x-api-key": "sk-free"})
    store.down = True
    for _ in range(3):
        with pytest.raises(LimitsUnavailable) as caught:
            await access.admit(team, MATCH)
        assert (caught.value.status_code, caught.value.code) == (503, "store_unavailable")
        assert caught.value.headers["retry-after"] == "1"
    assert await access.admit(free, MATCH) is None  # a key without limits never needs the store
    store.down = False
    with pytest.raises(LimitsUnavailable):  # still resting: the store is not asked within the interval
        await access.admit(team, MATCH)
    assert store.admitted == 0
    clock = time.monotonic() + store_guard.RETRY_INTERVAL
    monkeypatch.setattr(store_guard.time, "monotonic", lambda: clock)
    assert await access.admit(team, MATCH) is not None  # asked again: limits apply again
    assert store.admitted == 1
    assert access.store_guard.state()["state"] == "ok"
    assert access.store_guard.unavailable == 4


async def test_a_failed_commit_is_retried_with_the_next_batch() -> None:
    store = ScriptedStore()
    noon = 20_000 * 86_400 + 43_200.0  # 2024-10-04 12:00 UTC: rows are counted on that day
    recorder = UsageRecorder(store, dict, flush_interval=60, clock=lambda: noon)  # type: ignore[arg-type]

    async def scenario() -> None:
        await recorder.request_finished(record())
        store.down = True
        await recorder.flush()
        assert store.committed == []
        await recorder.request_finished(record())
        store.down = False
        await recorder.flush()

    await scenario()
    [batch] = store.committed
    assert batch.rows[UsageKey("team", "mock", "mock", "mock", "2024-10-04")].requests == 2


async def test_token_spend_is_recorded_only_for_keys_with_token_limits() -> None:
    store = ScriptedStore()
    keys = {
        "metered": make_key("metered", "a", limits=KeyLimits(tokens_per_day=10)),
        "free": make_key("free", "b"),
    }
    recorder = UsageRecorder(store, lambda: keys, flush_interval=60, clock=lambda: 1234.5)

    async def scenario() -> None:
        for name in ("metered", "free", "metered", None):
            await recorder.request_finished(record(name))
        await recorder.aclose()  # the shutdown flush

    await scenario()
    [batch] = store.committed
    assert batch.spend == {("metered", 1234): 6}
    assert sum(counters.requests for counters in batch.rows.values()) == 4
