"""Provider health state (thresholds, breaker verdicts, /health wording), its carry-over across reloads,
and the background checker's task lifecycle (probes over an injected httpx transport)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from gateway.config.models import CircuitBreaker, HealthCheck, ProviderConfig
from gateway.errors import UpstreamConnectError, UpstreamStatusError
from gateway.providers.base import Provider
from gateway.providers.httpx_adapter import HttpxTransport
from gateway.providers.registry import ProviderRegistry
from gateway.resilience.checker import HealthChecker, probe_once
from gateway.resilience.health import HealthRegistry, ProviderHealth


def provider(
    name: str = "p",
    handler: Callable[[httpx.Request], httpx.Response] | None = None,
    **config: object,
) -> Provider:
    cfg = ProviderConfig(name=name, type="openai", base_url="http://upstream.test/v1", **config)  # type: ignore[arg-type]
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(200, json={"data": []})))
    return Provider(cfg, HttpxTransport(transport))


def test_check_thresholds() -> None:
    health = ProviderHealth(provider())
    thresholds = (2, 3)  # healthy after 2 passes, unhealthy after 3 failures
    assert health.check_status == "unknown" and health.usable(0.0)
    health.record_check(True, 0.01, None, thresholds)
    assert health.check_status == "healthy"  # the first pass of a new provider is enough
    for _ in range(2):
        health.record_check(False, 0.01, "HTTP 500", thresholds)
        assert health.check_status == "healthy"
    health.record_check(False, 0.01, "HTTP 500", thresholds)
    assert health.check_status == "unhealthy" and not health.usable(0.0) and not health.acquire(0.0)
    assert health.state(0.0) == ("unhealthy", "health check failed 3 times in a row: HTTP 500")
    health.record_check(True, 0.01, None, thresholds)
    assert health.check_status == "unhealthy"
    health.record_check(True, 0.02, None, thresholds)
    assert health.check_status == "healthy" and health.state(0.0) == ("healthy", None)
    snapshot = health.snapshot(0.0)
    assert snapshot["health_check"]["latency_ms"] == 20.0
    assert snapshot["health_check"]["last_check"].endswith("Z")


def test_breaker_verdicts_by_error_kind() -> None:
    health = ProviderHealth(provider(circuit_breaker=CircuitBreaker(failure_threshold=2, cooldown=5.0)))
    health.record_error(UpstreamStatusError(400, b""), 0.0, 0.01)  # the request's fault
    health.record_error(UpstreamStatusError(429, b""), 0.0, 0.01)  # rate limited: no verdict
    assert health.breaker.failures == 0 and health.latency is None
    health.record_error(UpstreamStatusError(503, b""), 0.0, 0.01)
    health.record_error(UpstreamConnectError("refused"), 1.0, 0.001)
    assert health.breaker.state == "open"
    state, reason = health.state(2.0)
    assert (
        state == "unhealthy" and reason is not None and "circuit open after 2 consecutive failures" in reason
    )
    assert health.latency is not None and health.latency >= 10.0  # failures count as slow for least_latency
    assert health.state(6.0) == ("healthy", "circuit half-open: the next request is a trial")


def test_latency_is_a_moving_average() -> None:
    health = ProviderHealth(provider())
    health.record_success(0.1)
    health.record_success(0.2)
    assert health.latency == pytest.approx(0.13)


def test_unavailable_provider_reports_why() -> None:
    cfg = ProviderConfig(name="d", type="openai", base_url="http://x/v1", unavailable_reason="KEY is not set")
    health = ProviderHealth(Provider(cfg, None))
    assert health.state(0.0) == ("unavailable", "KEY is not set")


def test_registry_keeps_state_of_unchanged_providers_only() -> None:
    configs = {
        "kept": ProviderConfig(name="kept", type="mock", base_url=""),
        "changed": ProviderConfig(name="changed", type="mock", base_url=""),
        "removed": ProviderConfig(name="removed", type="mock", base_url=""),
    }
    registry, _ = ProviderRegistry.build(configs)
    health, retired = HealthRegistry.build(registry)
    assert retired == [] and len(health) == 3
    kept, changed, removed = health.get("kept"), health.get("changed"), health.get("removed")
    configs2 = {
        "kept": configs["kept"],
        "changed": ProviderConfig(name="changed", type="mock", base_url="", stream_usage=False),
        "new": ProviderConfig(name="new", type="mock", base_url=""),
    }
    registry2, _ = ProviderRegistry.build(configs2, registry)
    health2, retired2 = HealthRegistry.build(registry2, health)
    assert health2.get("kept") is kept
    assert health2.get("changed") is not changed and health2.get("new") is not None
    assert set(map(id, retired2)) == {id(changed), id(removed)}


async def test_probe_records_status_and_errors() -> None:
    await probe_records_status_and_errors()


async def probe_records_status_and_errors() -> None:
    answers = iter([httpx.Response(200), httpx.Response(503)])
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        return next(answers)

    health = ProviderHealth(provider(handler=handler, health_check=HealthCheck(unhealthy_threshold=1)))
    assert await probe_once(health)
    assert seen == ["GET http://upstream.test/v1/models"]
    assert "authorization" not in (health.check_error or "")
    assert not await probe_once(health)
    assert health.check_status == "unhealthy"
    assert health.check_error == "probe GET /models answered HTTP 503"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    down = ProviderHealth(provider(handler=refuse, health_check=HealthCheck(unhealthy_threshold=1)))
    assert not await probe_once(down)
    assert down.check_error is not None and "could not connect" in down.check_error


async def test_checker_follows_the_registry_and_drains_on_close() -> None:
    await checker_follows_the_registry_and_drains_on_close()


async def checker_follows_the_registry_and_drains_on_close() -> None:
    probes: list[str] = []

    def counting(name: str) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            probes.append(name)
            return httpx.Response(200)

        return handler

    fast = HealthCheck(interval=0.01)
    a = provider("a", counting("a"), health_check=fast)
    b = provider("b", counting("b"), health_check=fast)
    off = provider("off", counting("off"), health_check=HealthCheck(enabled=False))
    first = HealthRegistry({"a": ProviderHealth(a), "b": ProviderHealth(b), "off": ProviderHealth(off)})
    checker = HealthChecker()
    checker.sync(first)
    assert checker.watched == ["a", "b"]
    await asyncio.sleep(0.1)
    assert probes.count("a") >= 3 and probes.count("b") >= 3 and "off" not in probes

    # A reload drops b and keeps a's state object: a keeps its task, b's task stops.
    second = HealthRegistry({"a": first.get("a")})  # type: ignore[dict-item]
    checker.sync(second)
    assert checker.watched == ["a"]
    await asyncio.sleep(0.05)
    count_b = probes.count("b")
    await asyncio.sleep(0.1)
    assert probes.count("b") == count_b and probes.count("a") > 5

    await checker.aclose()
    count_a = probes.count("a")
    await asyncio.sleep(0.05)
    assert probes.count("a") == count_a
    assert checker.watched == []
    checker.sync(first)  # after close nothing starts again
    assert checker.watched == []
    for p in (a, b, off):
        await p.aclose()
