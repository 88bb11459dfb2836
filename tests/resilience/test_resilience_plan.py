"""Route plans (which policy and timeouts each target gets) and dispatcher edge cases in process, with
providers on `httpx.MockTransport`."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import httpx
import pytest

from gateway.config.models import (
    CircuitBreaker,
    ProviderConfig,
    RetryPolicy,
    RouteConfig,
    Target,
    Timeouts,
)
from gateway.errors import ProviderUnavailable
from gateway.providers.base import Provider
from gateway.providers.httpx_adapter import HttpxTransport
from gateway.providers.registry import ProviderRegistry
from gateway.resilience.dispatch import Dispatcher, RequestContext
from gateway.resilience.health import HealthRegistry
from gateway.resilience.plan import RoutePlan
from gateway.routing.table import RouteMatch

Handler = Callable[[httpx.Request], httpx.Response]
OK = b'{"id": "x", "object": "chat.completion", "choices": []}'


def make_provider(name: str, handler: Handler | None = None, **config: object) -> Provider:
    cfg = ProviderConfig(name=name, type="openai", base_url=f"http://{name}.test/v1", **config)  # type: ignore[arg-type]
    if cfg.unavailable_reason is not None:
        return Provider(cfg, None)
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(200, content=OK)))
    return Provider(cfg, HttpxTransport(transport))


def plan_for(route: RouteConfig, *providers: Provider) -> RoutePlan:
    registry = ProviderRegistry({p.name: p for p in providers})
    return RoutePlan(route, registry, HealthRegistry.build(registry)[0], random.Random(1))


def test_without_a_route_policy_the_first_targets_provider_policy_applies() -> None:
    a = make_provider("a", retry=RetryPolicy(attempts=3, deadline=9.0), timeouts=Timeouts(first_byte=1.0))
    b = make_provider("b", retry=RetryPolicy(attempts=1), timeouts=Timeouts(first_byte=2.0))
    plan = plan_for(RouteConfig("r", "m", (Target("a"), Target("b"))), a, b)

    assert [t.rules.attempts for t in plan.targets] == [3, 3]
    assert plan.deadline == 9.0
    # Timeouts stay each provider's own; nothing overrides the client's httpx timeouts.
    assert [t.timeouts.first_byte for t in plan.targets] == [1.0, 2.0]
    assert [t.request_timeouts for t in plan.targets] == [None, None]


def test_a_route_policy_and_timeouts_apply_to_every_target() -> None:
    a, b = make_provider("a"), make_provider("b")
    timeouts = Timeouts(read=5.0, total=30.0)
    route = RouteConfig(
        "r", "m", (Target("b", priority=1), Target("a")), retry=RetryPolicy(attempts=2), timeouts=timeouts
    )
    plan = plan_for(route, a, b)

    assert [t.provider.name for t in plan.targets] == ["a", "b"]  # by priority
    assert {t.rules.attempts for t in plan.targets} == {2}
    assert all(t.timeouts is timeouts and t.request_timeouts is timeouts for t in plan.targets)
    assert plan.deadline is None


def test_unavailable_providers_are_left_out_with_the_reason() -> None:
    missing = make_provider("k", unavailable_reason="environment variable K_KEY is not set")
    partial = plan_for(RouteConfig("r", "m", (Target("k"), Target("a"))), missing, make_provider("a"))
    empty = plan_for(RouteConfig("r", "m", (Target("k"), Target("ghost"))), missing)

    assert [t.provider.name for t in partial.targets] == ["a"] and partial.unavailable is None
    assert empty.targets == ()
    assert empty.unavailable == (
        "no provider can serve route 'r': provider 'k' is unavailable: environment variable K_KEY is not "
        "set; provider 'ghost' is not configured"
    )


def context(route: RouteConfig) -> RequestContext:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    return RequestContext("req-1", RouteMatch(route, "exact", "m"), body, stream=False)


async def test_no_servable_target_answers_503_before_any_attempt() -> None:
    missing = make_provider("k", unavailable_reason="K_KEY is not set")
    route = RouteConfig("r", "m", (Target("k"),))
    dispatcher = Dispatcher(ProviderRegistry({"k": missing}))
    ctx = context(route)

    with pytest.raises(ProviderUnavailable, match="K_KEY is not set"):
        await dispatcher.complete(ctx)
    assert ctx.attempts == 0


async def test_a_cancelled_trial_frees_the_half_open_slot() -> None:
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, content=OK)

    cfg = ProviderConfig(
        name="a",
        type="openai",
        base_url="http://a.test/v1",
        circuit_breaker=CircuitBreaker(failure_threshold=1, cooldown=0.01),
    )
    provider = Provider(cfg, HttpxTransport(httpx.MockTransport(slow)))
    dispatcher = Dispatcher(ProviderRegistry({"a": provider}))
    health = dispatcher.health.get("a")
    assert health is not None
    health.breaker.record_failure(0.0, "boom")  # open long ago: the next request is the trial
    route = RouteConfig("r", "m", (Target("a"),))

    trial = asyncio.create_task(dispatcher.complete(context(route)))
    await asyncio.sleep(0.05)
    assert health.breaker.state == "half_open" and health.breaker.trial_in_flight
    trial.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert not health.breaker.trial_in_flight

    release.set()
    reply = await dispatcher.complete(context(route))  # the next request becomes the trial
    assert reply.status_code == 200 and health.breaker.state == "closed"
    await provider.aclose()
