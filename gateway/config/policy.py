"""The effective retry and timeouts of a target on a route: one function, used by the builder (for the
base a route's own `retry:`/`timeouts:` are laid over), the dispatcher's plans and `gateway explain`, so
what explain says is what runs.

The rule (as the schema documents): the route's `retry` (laid over its first target's provider's), else its
first target's provider's, for every target and the request deadline; the route's `timeouts` (laid over the
first target's provider's), else each target's own provider's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.config.models import ProviderConfig, RetryPolicy, RouteConfig, Target, Timeouts


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    retry: RetryPolicy
    retry_from: str  # "route", "provider NAME (the route's first target)" or "defaults"
    timeouts: Timeouts  # effective: first_byte and total are enforced by the attempt loop
    timeouts_from: str  # "route" or "provider NAME"
    request_timeouts: Timeouts | None  # the route's override for the wire; None: the provider's own


def first_target_provider(
    targets: Sequence[Target], providers: Mapping[str, ProviderConfig]
) -> ProviderConfig | None:
    """The provider whose retry and timeouts a route's own settings are laid over."""
    return providers.get(targets[0].provider) if targets else None


def route_retry(route: RouteConfig, providers: Mapping[str, ProviderConfig]) -> tuple[RetryPolicy, str]:
    """The one retry policy of a route (every target, and the deadline), and where it comes from."""
    if route.retry is not None:
        return route.retry, "route"
    first = first_target_provider(route.targets, providers)
    if first is None:
        return RetryPolicy(), "defaults"
    return first.retry, f"provider {first.name} (the route's first target)"


def effective_policy(
    route: RouteConfig, target: Target, providers: Mapping[str, ProviderConfig]
) -> TargetPolicy | None:
    """What applies to `target` on `route`; None when its provider is not configured."""
    provider = providers.get(target.provider)
    if provider is None:
        return None
    retry, retry_from = route_retry(route, providers)
    if route.timeouts is not None:
        return TargetPolicy(retry, retry_from, route.timeouts, "route", route.timeouts)
    return TargetPolicy(retry, retry_from, provider.timeouts, f"provider {provider.name}", None)
