"""`gateway explain MODEL [--config DIR] [--api chat|messages] [--format text|json]`: what the gateway would
do with a model name, asked in one inbound API (default chat).

Loads the route files exactly as `serve` does and asks the same `RoutingTable.resolve` a request uses, then
prints which route answers and why (exact name, alias, or which glob), and the policy that would apply:
the order targets are tried in, each one native (the request goes unchanged) or translated (to which API),
retries, timeouts, streaming mode, breaker and health checks. The policy
follows the resilience rules (`gateway/resilience/plan.py`, pinned by a test): the route's `retry`, else
its first target's provider's, for every target and the deadline; the route's `timeouts`, else each
target's own provider's. Secrets are never printed.

Exit status: 0 a route matches, 1 no route matches, 2 the config cannot be loaded or a usage error.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from gateway.config import (
    GatewayConfig,
    ProviderConfig,
    RetryPolicy,
    RouteConfig,
    Target,
    Timeouts,
)
from gateway.config.apis import LONG_TO_SHORT, SHORT_NAMES
from gateway.config.models import ApiName
from gateway.config.placeholders import placeholder_names, shown_value
from gateway.config.policy import effective_policy, route_retry
from gateway.decision import load_offline, ordered_targets, plan_target
from gateway.routing.table import RouteMatch, RoutingTable

EXIT_MATCH = 0
EXIT_NO_ROUTE = 1
EXIT_CONFIG = 2

STRATEGIES = {
    "ordered": "targets in priority order (ties in list order); the next one after a retryable failure",
    "weighted": "the first target drawn at random by weight among usable ones, then the rest by priority",
    "round_robin": "the starting target rotates on every request; the others follow in list order",
    "least_latency": "the lowest measured latency first (unmeasured targets first, so they get measured)",
}
STREAMING = {
    "asgi": "asgi (raw ASGI streamer)",
    "starlette": "starlette (StreamingResponse)",
}
STREAMING_OVERRIDE = "a request can override it (x-use-asgi-streaming header, x_use_asgi_streaming field)"


def run_explain(
    model: str,
    paths: Sequence[str],
    fmt: str = "text",
    out: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    api: str = "chat",
) -> int:
    out = sys.stdout if out is None else out
    result = load_offline(list(paths), environ)  # unset secrets as placeholders: CI has none
    if result.config is None:
        for diagnostic in result.errors:
            print(diagnostic, file=out)
        print(
            f"cannot explain: the config in {', '.join(paths)} is invalid (see gateway validate-config)",
            file=out,
        )
        return EXIT_CONFIG
    config = result.config
    match = RoutingTable(config).resolve(model)
    report = explain(model, config, match, SHORT_NAMES[api])
    if fmt == "json":
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        out.write("\n".join(render_text(report)) + "\n")
    # A route that matches but does not serve `api` is a 404 at the gateway: no route, exit status too.
    return EXIT_MATCH if report["matched"] else EXIT_NO_ROUTE


def explain(
    model: str, config: GatewayConfig, match: RouteMatch | None, api: ApiName = "openai.chat"
) -> dict[str, Any]:
    """A plain-data report of how `model` is routed when asked in `api` (what both formats print)."""
    short = LONG_TO_SHORT[api]
    if match is None:
        return {"model": model, "api": short, "matched": False, **_no_match(model, config)}
    route = match.route
    if api not in route.apis:
        served = ", ".join(LONG_TO_SHORT[name] for name in route.apis)
        return {
            "model": model,
            "api": short,
            "matched": False,
            "why": f"route {route.name!r} matches, but serves only {served}: the gateway answers 404",
            "did_you_mean": [],
            "patterns": [],
        }
    policy, source = route_retry(route, config.providers)
    return {
        "model": model,
        "api": short,
        "matched": True,
        "route": route.name,
        "defined_at": str(route.position) if route.position else None,
        "match": {"kind": match.kind, "pattern" if match.kind == "pattern" else "name": _matched_name(match)},
        "why": _why(match),
        "also_matching_patterns": _other_patterns(model, route, config),
        "strategy": route.strategy,
        "strategy_means": STRATEGIES[route.strategy],
        "streaming": route.streaming,
        "retry": _retry(policy),
        "retry_from": source,
        "deadline": policy.deadline,
        "targets": [_target(route, target, match, config, api) for target in ordered_targets(route)],
    }


def _matched_name(match: RouteMatch) -> str:
    return match.model if match.kind == "alias" else match.route.model


def _why(match: RouteMatch) -> str:
    if match.kind == "exact":
        return f"exact model name {match.route.model!r}"
    if match.kind == "alias":
        return f"alias {match.model!r} of route {match.route.name!r} (model {match.route.model!r})"
    return (
        f"glob {match.route.model!r}: no exact name or alias is {match.model!r}, and this is the most "
        "specific matching glob (longest literal text, then fewest wildcards, then earliest)"
    )


def _other_patterns(model: str, winner: RouteConfig, config: GatewayConfig) -> list[dict[str, Any]]:
    """Other globs that match too but lose to the winner (useful when a route is unexpectedly shadowed)."""
    return [
        {
            "route": route.name,
            "pattern": route.model,
            "defined_at": str(route.position) if route.position else None,
        }
        for route in config.routes
        if route is not winner and route.is_pattern and fnmatch.fnmatchcase(model, route.model)
    ]


def _no_match(model: str, config: GatewayConfig) -> dict[str, Any]:
    names = [route.model for route in config.routes if not route.is_pattern]
    names += [alias for route in config.routes for alias in route.aliases]
    return {
        "why": "no exact name, alias or glob matches; the gateway answers 404 model_not_found",
        "did_you_mean": difflib.get_close_matches(model, names, n=3),
        "patterns": [route.model for route in config.routes if route.is_pattern],
    }


def _target(
    route: RouteConfig, target: Target, match: RouteMatch, config: GatewayConfig, api: ApiName
) -> dict[str, Any]:
    provider = config.providers.get(target.provider)
    plan = plan_target(target, match, config, api)
    entry: dict[str, Any] = {
        "provider": plan.provider,
        "upstream_model": plan.upstream_model,
        "priority": plan.priority,
    }
    if route.strategy == "weighted":
        total = sum(t.weight for t in route.targets) or 1.0
        entry["weight"] = target.weight
        entry["share"] = round(100 * target.weight / total, 1)
    if provider is None:  # cannot happen for a loaded config; kept so a report never crashes
        entry["available"] = False
        entry["reason"] = "provider is not configured"
        return entry
    policy = effective_policy(route, target, config.providers)
    assert policy is not None  # the provider is configured
    reason = provider.unavailable_reason
    unset = placeholder_names(provider.api_key)
    if reason is None and unset:  # loaded with a placeholder key: it would be unavailable here
        reason = f"environment variable {unset[0]} is not set"
    upstream = plan.upstream_api
    entry.update(
        {
            "type": provider.type,
            "base_url": shown_value(provider.base_url),
            "upstream_api": None if upstream is None else LONG_TO_SHORT[upstream],
            "upstream_base_url": None if upstream is None else shown_value(provider.apis[upstream]),
            "translation": plan.translation,
            "available": reason is None,
            "reason": reason,
            "timeouts": _timeouts(policy.timeouts),
            "timeouts_from": policy.timeouts_from,
            "circuit_breaker": {
                "failure_threshold": provider.circuit_breaker.failure_threshold,
                "cooldown": provider.circuit_breaker.cooldown,
            },
            "health_check": _health_check(provider),
        }
    )
    return entry


def _retry(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "attempts": policy.attempts,
        "retry_on": list(policy.retry_on),
        "backoff": {"base": policy.backoff.base, "max": policy.backoff.max, "jitter": policy.backoff.jitter},
        "retry_after_cap": policy.retry_after_cap,
    }


def _timeouts(timeouts: Timeouts) -> dict[str, float | None]:
    return {
        "connect": timeouts.connect,
        "read": timeouts.read,
        "write": timeouts.write,
        "first_byte": timeouts.first_byte,
        "total": timeouts.total,
    }


def _health_check(provider: ProviderConfig) -> dict[str, Any] | None:
    check = provider.health_check
    if not check.enabled:
        return None
    return {"method": check.method, "path": check.path, "interval": check.interval, "timeout": check.timeout}


# Text rendering.


def render_text(report: dict[str, Any]) -> list[str]:
    model = report["model"]
    if not report["matched"]:
        lines = [f"model {model!r}: no route", f"  why:       {report['why']}"]
        if report["did_you_mean"]:
            lines.append("  did you mean: " + ", ".join(repr(name) for name in report["did_you_mean"]))
        if report["patterns"]:
            lines.append("  globs:     " + ", ".join(repr(pattern) for pattern in report["patterns"]))
        return lines
    where = f"  ({report['defined_at']})" if report["defined_at"] else ""
    lines = [
        f"model {model!r} ({report['api']} API) -> route {report['route']!r}{where}",
        f"  why:       {report['why']}",
    ]
    for other in report["also_matching_patterns"]:
        at = f" at {other['defined_at']}" if other["defined_at"] else ""
        lines.append(
            f"             also matches, but loses: glob {other['pattern']!r} of {other['route']!r}{at}"
        )
    lines += [
        f"  strategy:  {report['strategy']}: {report['strategy_means']}",
        f"  streaming: {STREAMING[report['streaming']]} for stream=true requests",
        f"             {STREAMING_OVERRIDE}",
        _retry_line(report["retry"], report["retry_from"]),
        f"  deadline:  {_seconds(report['deadline'])} for the whole request, across every attempt",
        "  targets, in the order tried:",
    ]
    for number, target in enumerate(report["targets"], 1):
        lines += _target_lines(number, target)
    return lines


def _target_lines(number: int, target: dict[str, Any]) -> list[str]:
    head = f"    {number}. {target['provider']}"
    if "type" in target:
        head += f" ({target['type']}, {target['base_url'] or 'built in'})"
    head += f" as model {target['upstream_model']!r}"
    if "weight" in target:
        head += f", weight {target['weight']:g} ({target['share']:g}%)"
    if target["priority"]:
        head += f", priority {target['priority']}"
    lines = [head]
    if target.get("translation") == "native":
        lines.append(f"       native: sent unchanged to its {target['upstream_api']} API")
    elif target.get("translation") == "translated":
        lines.append(
            f"       translated: to its {target['upstream_api']} API ({target['upstream_base_url']})"
        )
    if not target["available"]:
        lines.append(f"       UNAVAILABLE: {target['reason']} (skipped)")
    if "timeouts" not in target:
        return lines
    timeouts = target["timeouts"]
    lines.append(
        "       timeouts: "
        + ", ".join(f"{name.replace('_', ' ')} {_seconds(value)}" for name, value in timeouts.items())
        + f" [{target['timeouts_from']}]"
    )
    breaker = target["circuit_breaker"]
    lines.append(
        f"       breaker:  opens after {breaker['failure_threshold']} consecutive failures, "
        f"half-opens after {_seconds(breaker['cooldown'])}"
    )
    check = target["health_check"]
    lines.append(
        "       health:   "
        + (
            f"{check['method']} {check['path']} every {_seconds(check['interval'])} "
            f"(timeout {_seconds(check['timeout'])})"
            if check
            else "no active check"
        )
    )
    return lines


def _retry_line(retry: dict[str, Any], source: str) -> str:
    attempts = retry["attempts"]
    tries = "1 attempt per target (no retry)" if attempts == 1 else f"{attempts} attempts per target"
    backoff = retry["backoff"]
    return (
        f"  retry:     {tries} [{source}]; on {', '.join(retry['retry_on'])}; backoff "
        f"{_seconds(backoff['base'])} doubling up to {_seconds(backoff['max'])}"
        f"{', jittered' if backoff['jitter'] else ''}; Retry-After honoured up to "
        f"{_seconds(retry['retry_after_cap'])}"
    )


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:g}s"
