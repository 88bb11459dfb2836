"""What a config would do with one request (model, key, API), without sending anything: the shared core of
`gateway explain`, `gateway test` and `gateway replay`.

It asks the same `RoutingTable.resolve` a request uses and follows the admission order of
`api/admit.py`: the key (401), the route (404), the route's APIs (404), the key's allowlist (403). The
targets come in the order the `ordered` strategy tries them, each native (sent unchanged) or translated.
Limits are the key's; whether a request is over one depends on traffic (`replay_compare.py` simulates it).

`load_offline` loads route files as `validate-config` does, but gives each unset `${VAR}` a placeholder:
these commands refer to keys by name and never need a secret (a config repository's CI has none).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gateway.access.keys import key_from_config
from gateway.config import GatewayConfig, KeyLimits, LoadResult, RouteConfig, Target
from gateway.config.apis import upstream_api
from gateway.config.models import ApiName
from gateway.config.placeholders import load_offline as offline_load
from gateway.config.prices import Price
from gateway.routing.table import RouteMatch, RoutingTable

Outcome = Literal["routed", "missing_key", "unknown_key", "no_route", "api_not_served", "model_not_allowed"]
Translation = Literal["native", "translated", "impossible", "unconfigured"]
# The status the gateway answers before dispatch, per outcome ("routed": dispatched).
OUTCOME_STATUS: Mapping[Outcome, int] = {
    "routed": 200,
    "missing_key": 401,
    "unknown_key": 401,
    "no_route": 404,
    "api_not_served": 404,
    "model_not_allowed": 403,
}


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """One target of a route as a request in one API would be sent to it."""

    provider: str
    upstream_model: str
    priority: int
    weight: float
    upstream_api: ApiName | None  # None: no API of the provider is reachable (or it is not configured)
    translation: Translation

    @property
    def label(self) -> str:
        """`provider/upstream-model`, as route tests and replay reports write a target."""
        return f"{self.provider}/{self.upstream_model}"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to "what would this config do with (model, key, api)?"."""

    model: str
    api: ApiName
    key: str | None
    outcome: Outcome
    match: RouteMatch | None = None
    targets: tuple[TargetPlan, ...] = ()  # in the order tried; empty unless the route serves the API
    limits: KeyLimits | None = None  # the key's; None without a key (or when keys are not enforced)

    @property
    def route(self) -> str | None:
        return None if self.match is None else self.match.route.name

    @property
    def admitted(self) -> bool:
        """Past the key, the route and the allowlist (limits aside)."""
        return self.outcome == "routed"

    @property
    def status(self) -> int:
        return OUTCOME_STATUS[self.outcome]

    @property
    def first_choices(self) -> tuple[TargetPlan, ...]:
        """The targets a request may go to first: the first one in order for `ordered`, any of them for
        the strategies that pick per request (weighted, round_robin, least_latency)."""
        if not self.targets:
            return ()
        strategy = self.match.route.strategy if self.match is not None else "ordered"
        return self.targets[:1] if strategy == "ordered" else self.targets


def ordered_targets(route: RouteConfig) -> list[Target]:
    """The targets in the order the `ordered` strategy tries them (priority, ties in list order)."""
    return sorted(route.targets, key=lambda target: target.priority)


def plan_target(target: Target, match: RouteMatch, config: GatewayConfig, api: ApiName) -> TargetPlan:
    """Where and in which API a request of `api` matched by `match` goes on `target`."""
    provider = config.providers.get(target.provider)
    upstream = None if provider is None else upstream_api(api, tuple(provider.apis))
    translation: Translation = (
        "unconfigured"
        if provider is None
        else "native"
        if upstream == api
        else "translated"
        if upstream
        else "impossible"
    )
    return TargetPlan(
        provider=target.provider,
        upstream_model=target.model or match.model,
        priority=target.priority,
        weight=target.weight,
        upstream_api=upstream,
        translation=translation,
    )


class ConfigJudge:
    """Decisions of one loaded config; built once, asked many times (replay asks per logged request,
    so the answers are memoised per (model, api, key))."""

    __slots__ = ("_memo", "config", "keys", "table")

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.table = RoutingTable(config)
        self.keys = {key.name: key_from_config(key) for key in config.access.keys}
        self._memo: dict[tuple[str, ApiName, str | None, bool], Decision] = {}

    @property
    def enforces_keys(self) -> bool:
        return self.config.access.mode == "keys"

    def decide(self, model: str, api: ApiName, key: str | None, *, key_known: bool = True) -> Decision:
        """`key` by name (None: no key sent). `key_known=False` when the key is not known at all (a
        logged 404 names none): the key and its allowlist are then not judged."""
        memo_key = (model, api, key, key_known)
        found = self._memo.get(memo_key)
        if found is None:
            found = self._memo[memo_key] = self._decide(model, api, key, key_known)
        return found

    def _decide(self, model: str, api: ApiName, key: str | None, key_known: bool) -> Decision:
        enforced = self.enforces_keys and key_known
        config_key = self.keys.get(key) if key is not None and enforced else None
        if enforced and key is None:
            return Decision(model, api, key, "missing_key")
        if enforced and config_key is None:
            return Decision(model, api, key, "unknown_key")
        match = self.table.resolve(model)
        if match is None:
            return Decision(model, api, key, "no_route")
        if api not in match.route.apis:
            return Decision(model, api, key, "api_not_served", match)
        targets = tuple(plan_target(t, match, self.config, api) for t in ordered_targets(match.route))
        limits = None if config_key is None else config_key.limits
        if config_key is not None and not config_key.allows(match):
            return Decision(model, api, key, "model_not_allowed", match, targets, limits)
        return Decision(model, api, key, "routed", match, targets, limits)

    def price(self, target: TargetPlan) -> Price | None:
        """The price entry of a target (provider and upstream model), or None when it is not priced."""
        prices = self.config.prices
        return None if prices is None else prices.price(target.provider, target.upstream_model)


def load_offline(paths: Sequence[str | Path], environ: Mapping[str, str] | None = None) -> LoadResult:
    """`load_config` with a placeholder for each unset variable (config/placeholders.py): these commands
    refer to keys by name and route as production would, where the secrets are set."""
    return offline_load(paths, environ).result
