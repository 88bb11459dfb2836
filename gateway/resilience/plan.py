"""A route prepared for the attempt loop: its usable targets with their provider, health state, retry
rules and timeouts resolved once, so a request only walks a tuple.

Which policy applies is `config.policy.effective_policy`, the function `gateway explain` shows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gateway.config.models import RouteConfig, Target, Timeouts
from gateway.config.policy import effective_policy, route_retry
from gateway.providers.base import Provider
from gateway.providers.registry import ProviderRegistry
from gateway.resilience.health import HealthRegistry, ProviderHealth
from gateway.resilience.retry import RetryRules
from gateway.resilience.strategy import TargetOrder


@dataclass(frozen=True, slots=True, eq=False)
class PlannedTarget:
    target: Target
    provider: Provider
    health: ProviderHealth
    rules: RetryRules
    timeouts: Timeouts  # effective: first_byte and total are enforced by the loop
    request_timeouts: Timeouts | None  # the route's override for httpx, None = the client's own

    @property
    def weight(self) -> float:
        return self.target.weight

    @property
    def latency(self) -> float | None:
        return self.health.latency

    def usable(self, now: float) -> bool:
        return self.health.usable(now)


class RoutePlan:
    __slots__ = ("deadline", "order", "route", "targets", "unavailable")

    def __init__(
        self,
        route: RouteConfig,
        registry: ProviderRegistry,
        health: HealthRegistry,
        rng: random.Random | None = None,
    ) -> None:
        self.route = route
        ranked = sorted(route.targets, key=lambda target: target.priority)
        planned: list[PlannedTarget] = []
        reasons: list[str] = []
        configs = registry.configs
        policy, _ = route_retry(route, configs)
        rules = RetryRules.from_policy(policy, rng)
        for target in ranked:
            provider = registry.get(target.provider)
            state = health.get(target.provider)
            effective = effective_policy(route, target, configs)
            if provider is None or state is None or effective is None:
                reasons.append(f"provider {target.provider!r} is not configured")
                continue
            if not provider.available:
                reasons.append(f"provider {target.provider!r} is unavailable: {provider.unavailable_reason}")
                continue
            planned.append(
                PlannedTarget(
                    target=target,
                    provider=provider,
                    health=state,
                    rules=rules,
                    timeouts=effective.timeouts,
                    request_timeouts=effective.request_timeouts,
                )
            )
        self.targets = tuple(planned)
        self.order: TargetOrder[PlannedTarget] = TargetOrder(route.strategy, planned, rng)
        # Why nothing can serve this route (the 503 message), or None when something can.
        self.unavailable = (
            None if planned else f"no provider can serve route {route.name!r}: " + "; ".join(reasons)
        )
        self.deadline = policy.deadline
