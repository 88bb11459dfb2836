"""`gateway explain MODEL`: which route answers a model name, why, and the policy that applies.

Fixtures: tests/fixtures/explain (providers, routes with every kind of match, a catch-all glob).
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config
from gateway.explain_command import explain as explain_report
from gateway.explain_command import run_explain
from gateway.providers.registry import ProviderRegistry
from gateway.resilience.health import HealthRegistry
from gateway.resilience.plan import RoutePlan
from gateway.routing.table import RoutingTable

FIXTURES = Path(__file__).parent.parent / "fixtures" / "explain"
PROVIDERS = FIXTURES / "10-providers.yaml"
ROUTES = FIXTURES / "20-routes.yaml"
CATCH_ALL = FIXTURES / "30-catch-all.yaml"
SECRET = "sk-test-secret-never-printed"


def explain(
    model: str, paths: list[Path] | None = None, fmt: str = "text", environ: dict[str, str] | None = None
) -> tuple[int, str]:
    out = io.StringIO()
    status = run_explain(model, [str(p) for p in paths or [FIXTURES]], fmt, out=out, environ=environ or {})
    return status, out.getvalue()


def report(
    model: str, paths: list[Path] | None = None, environ: dict[str, str] | None = None
) -> dict[str, Any]:
    status, text = explain(model, paths, "json", environ)
    data: dict[str, Any] = json.loads(text)
    assert status == (0 if data["matched"] else 1)
    return data


@pytest.mark.parametrize(
    ("model", "route", "kind", "why", "losers"),
    [
        ("gpt-4o", "chat", "exact", "exact model name 'gpt-4o'", ["*"]),
        ("gpt-4", "chat", "alias", "alias 'gpt-4' of route 'chat' (model 'gpt-4o')", ["*"]),
        ("split", "split", "exact", "exact model name 'split'", ["*"]),
        ("deepseek-r1", "deepseek-reasoning", "pattern", "glob 'deepseek-r*'", ["deepseek-*", "*"]),
        ("deepseek-chat", "deepseek-any", "pattern", "glob 'deepseek-*'", ["*"]),
        ("llama3.2", "anything-else", "pattern", "glob '*'", []),
    ],
)
def test_which_route_and_why(model: str, route: str, kind: str, why: str, losers: list[str]) -> None:
    data = report(model)
    assert (data["route"], data["match"]["kind"]) == (route, kind)
    assert data["why"].startswith(why)
    assert [other["pattern"] for other in data["also_matching_patterns"]] == losers


def test_target_order_and_policy_come_from_the_route_when_it_sets_them() -> None:
    data = report("gpt-4o", environ={"PRIMARY_API_KEY": SECRET})
    assert data["defined_at"] == f"{ROUTES}:3:3"
    assert (data["strategy"], data["streaming"], data["deadline"]) == ("ordered", "starlette", None)
    primary, backup = data["targets"]
    # priority 0 before priority 1, whatever the list order; the target's model name is sent upstream.
    assert (primary["provider"], primary["upstream_model"]) == ("primary", "gpt-4o-2024-08-06")
    assert (backup["provider"], backup["upstream_model"], backup["priority"]) == ("backup", "gpt-4o", 1)
    assert (data["retry_from"], data["retry"]["attempts"]) == ("route", 2)
    for target in (primary, backup):
        assert target["timeouts_from"] == "route"
        assert (target["timeouts"]["first_byte"], target["timeouts"]["total"]) == (10, 60)
        assert target["available"] is True
    assert primary["circuit_breaker"] == {"failure_threshold": 3, "cooldown": 10}


def test_otherwise_retry_is_the_first_targets_providers_and_timeouts_each_targets_own() -> None:
    data = report("split")
    assert data["strategy"] == "weighted"
    primary, backup = data["targets"]
    assert (primary["weight"], primary["share"], backup["weight"], backup["share"]) == (3, 75.0, 1, 25.0)
    # One retry policy and deadline for the route: its first target's provider's (primary: 3 attempts).
    assert data["retry_from"] == "provider primary (the route's first target)"
    assert (data["retry"]["attempts"], data["deadline"]) == (3, 20)
    assert primary["timeouts"] == {"connect": 5, "read": 30, "write": 60, "first_byte": None, "total": None}
    assert backup["timeouts"]["connect"] == 60 and backup["timeouts_from"] == "provider backup"
    assert primary["available"] is False
    assert primary["reason"] == "environment variable PRIMARY_API_KEY is not set"


def test_text_output() -> None:
    status, text = explain("deepseek-r1")
    assert status == 0
    assert text.splitlines() == [
        f"model 'deepseek-r1' (chat API) -> route 'deepseek-reasoning'  ({ROUTES}:19:3)",
        "  why:       glob 'deepseek-r*': no exact name or alias is 'deepseek-r1', and this is the most "
        "specific matching glob (longest literal text, then fewest wildcards, then earliest)",
        f"             also matches, but loses: glob 'deepseek-*' of 'deepseek-any' at {ROUTES}:22:3",
        f"             also matches, but loses: glob '*' of 'anything-else' at {CATCH_ALL}:3:3",
        "  strategy:  ordered: targets in priority order (ties in list order); the next one after a "
        "retryable failure",
        "  streaming: asgi (raw ASGI streamer) for stream=true requests",
        "             a request can override it (x-use-asgi-streaming header, x_use_asgi_streaming field)",
        "  retry:     1 attempt per target (no retry) [provider local (the route's first target)]; on 429, "
        "500, 502, 503, 504, connect_error, timeout, read_error; backoff 0.25s doubling up to 8s, jittered; "
        "Retry-After "
        "honoured up to 30s",
        "  deadline:  none for the whole request, across every attempt",
        "  targets, in the order tried:",
        "    1. local (ollama, http://localhost:11434) as model 'deepseek-r1:7b'",
        "       native: sent unchanged to its chat API",
        "       timeouts: connect 60s, read 60s, write 60s, first byte none, total none [provider local]",
        "       breaker:  opens after 5 consecutive failures, half-opens after 30s",
        "       health:   no active check",
    ]


def test_unavailable_target_is_flagged_in_text() -> None:
    status, text = explain("split")
    assert status == 0
    assert (
        "       UNAVAILABLE: environment variable PRIMARY_API_KEY is not set (skipped)" in text.splitlines()
    )
    assert "weight 3 (75%)" in text and "weight 1 (25%)" in text


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_never_printed(fmt: str) -> None:
    status, text = explain("gpt-4o", fmt=fmt, environ={"PRIMARY_API_KEY": SECRET, "BACKUP_API_KEY": SECRET})
    assert status == 0 and SECRET not in text and "api_key" not in text


def test_no_route_exits_1_with_suggestions() -> None:
    status, text = explain("gpt-4p", [PROVIDERS, ROUTES])
    assert status == 1
    assert text.splitlines() == [
        "model 'gpt-4p': no route",
        "  why:       no exact name, alias or glob matches; the gateway answers 404 model_not_found",
        "  did you mean: 'gpt-4', 'gpt-4o'",
        "  globs:     'deepseek-r*', 'deepseek-*'",
    ]
    data = report("gpt-4p", [PROVIDERS, ROUTES])
    assert data["matched"] is False and data["did_you_mean"] == ["gpt-4", "gpt-4o"]


def test_invalid_config_exits_2_with_positioned_errors() -> None:
    status, text = explain("gpt-4o", [ROUTES])  # routes without their providers
    assert status == 2
    lines = text.splitlines()
    assert lines[0] == f"{ROUTES}:10:19: error: route 'chat' targets unknown provider 'backup'"
    assert lines[-1].startswith("cannot explain: the config in") and "validate-config" in lines[-1]


def test_missing_config_path_exits_2(tmp_path: Path) -> None:
    status, text = explain("gpt-4o", [tmp_path / "nope"])
    assert status == 2 and "no such file or directory" in text


async def test_explain_agrees_with_the_plan_the_dispatcher_uses() -> None:
    """The policy explain prints is the one requests get: compare with `RoutePlan` for every route."""
    environ = {"PRIMARY_API_KEY": SECRET}
    config = load_config([FIXTURES], environ).config
    assert config is not None
    registry, _ = ProviderRegistry.build(config.providers)
    health, _ = HealthRegistry.build(registry)
    try:
        for route in config.routes:
            plan = RoutePlan(route, registry, health)
            data = explain_report(route.model, config, RoutingTable(config).resolve(route.model))
            assert data["route"] == route.name
            assert [t["provider"] for t in data["targets"]] == [p.target.provider for p in plan.targets]
            assert data["deadline"] == plan.deadline
            for shown, planned in zip(data["targets"], plan.targets, strict=True):
                assert planned.rules.attempts == data["retry"]["attempts"]
                assert planned.rules.max_wait == data["retry"]["backoff"]["max"]
                assert shown["timeouts"] == dataclasses.asdict(planned.timeouts)
    finally:
        await registry.aclose()


def test_messages_api_shows_native_or_translated_per_target() -> None:
    """Ollama speaks Messages natively; an OpenAI-compatible provider is reached by translation."""
    out = io.StringIO()
    assert run_explain("deepseek-r1", [str(FIXTURES)], out=out, environ={}, api="messages") == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("model 'deepseek-r1' (messages API) -> route 'deepseek-reasoning'")
    assert "       native: sent unchanged to its messages API" in lines
    out = io.StringIO()
    assert run_explain("split", [str(FIXTURES)], "json", out=out, environ={}, api="messages") == 0
    targets = json.loads(out.getvalue())["targets"]
    assert [(target["translation"], target["upstream_api"]) for target in targets] == [
        ("translated", "chat")
    ] * len(targets)
