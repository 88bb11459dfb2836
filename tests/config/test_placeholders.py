"""Offline loads: every unset `${VAR}` without a default stands for a placeholder (config/placeholders.py),
shared by `diff`, `test`, `replay`, `explain` and `validate-config --no-secrets`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from gateway.config.placeholders import load_offline, placeholders, shown_value
from gateway.config.yaml_source import parse_source
from gateway.explain_command import run_explain

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_ROUTES = REPO_ROOT / "deploy" / "kubernetes" / "base" / "routes"


def test_placeholders_stand_only_for_unset_variables_without_a_default() -> None:
    source, problem = parse_source(
        "p.yaml",
        "providers:\n"
        "  a:\n"
        "    type: openai\n"
        "    base_url: ${A_URL}/v1\n"
        "    api_key: ${A_KEY}\n"
        "    headers: {X-Org: 'org ${ORG:-none}', X-Set: '${IS_SET}'}\n"
        "  b:\n"
        "    type: openai\n"
        "    base_url: https://${B_HOST}/v1\n"
        "    api_key: $${NOT_A_REFERENCE}\n",
    )
    assert problem is None and source is not None
    stand_ins, first_uses = placeholders((source,), {"IS_SET": "x"})
    assert stand_ins == {
        "A_URL": "http://envunset-A_URL.invalid",
        "A_KEY": "envunset-A_KEY.invalid",
        "B_HOST": "envunset-B_HOST.invalid",
    }
    # Each is a warning at its first use (validate-config --no-secrets prints them).
    assert [(name, use.line, use.column, use.severity) for name, use in first_uses.items()] == [
        ("A_URL", 4, 15, "warning"),
        ("A_KEY", 5, 14, "warning"),
        ("B_HOST", 9, 15, "warning"),
    ]
    assert shown_value("http://envunset-A_URL.invalid/v1") == "${A_URL}/v1"
    assert shown_value("https://envunset-B_HOST.invalid/v1") == "https://${B_HOST}/v1"


def test_the_kubernetes_routes_validate_in_ci_without_the_secrets() -> None:
    """docs/gitops.md's CI step on the repository's own ConfigMap routes: without `--no-secrets` the
    unset admin key and Redis password are errors (`serve` would refuse them); with it, warnings."""
    env = {"PATH": ""}  # no GATEWAY_ADMIN_KEY, REDIS_PASSWORD or provider keys, as in a CI job
    command = [sys.executable, "-m", "gateway", "validate-config", str(KUBERNETES_ROUTES)]
    strict = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)
    assert strict.returncode == 1, strict.stdout
    assert "settings.yaml:8:13: error: environment variable GATEWAY_ADMIN_KEY is not set" in strict.stdout
    relaxed = subprocess.run(
        [*command, "--no-secrets"], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60
    )
    assert relaxed.returncode == 0, relaxed.stdout
    warned = [line.split(": warning: ")[1] for line in relaxed.stdout.splitlines() if ": warning: " in line]
    assert warned == [
        f"environment variable {name} is not set: checked with a placeholder"
        for name in ("DEEPSEEK_API_KEY", "ANTHROPIC_API_KEY", "GATEWAY_ADMIN_KEY", "REDIS_PASSWORD")
    ]
    assert "valid: 2 files, 3 providers, 3 routes (4 warnings)" in relaxed.stdout


def test_an_offline_load_has_a_key_an_available_provider_and_a_store_url(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "providers:\n"
        "  up: {type: openai, base_url: 'https://up.example/v1', api_key: '${UP_KEY}'}\n"
        "routes:\n"
        "  m: {targets: [{provider: up}]}\n"
        "keys:\n"
        "  team: {secret: '${TEAM_KEY}'}\n"
        "settings:\n"
        "  stats_store: 'redis://:${REDIS_PASSWORD}@redis:6379/0'\n"
        "  stats_store_prefix: '${PREFIX:-gw}'\n"
    )
    offline = load_offline([tmp_path], {"PATH": ""})
    config = offline.result.config
    assert config is not None, offline.result.diagnostics
    assert sorted(offline.placeholders) == ["REDIS_PASSWORD", "TEAM_KEY", "UP_KEY"]  # PREFIX has a default
    assert config.providers["up"].unavailable_reason is None
    assert [key.name for key in config.access.keys] == ["team"]
    assert config.access.store.url == "redis://:envunset-REDIS_PASSWORD.invalid@redis:6379/0"
    assert config.access.store.prefix == "gw"
    # A set variable is used as `serve` uses it.
    assert load_offline([tmp_path], {"UP_KEY": "sk-real"}).result.config.providers["up"].api_key == "sk-real"  # type: ignore[union-attr]


def test_explain_says_a_provider_without_its_key_here_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "providers:\n"
        "  up: {type: openai, base_url: '${UP_URL}', api_key: '${UP_KEY}'}\n"
        "routes:\n"
        "  m: {targets: [{provider: up}]}\n"
        "keys:\n"
        "  team: {secret: '${TEAM_KEY}'}\n"
    )
    out = io.StringIO()
    assert run_explain("m", [str(tmp_path)], "json", out=out, environ={}) == 0
    [target] = json.loads(out.getvalue())["targets"]
    assert (target["available"], target["reason"]) == (False, "environment variable UP_KEY is not set")
    assert target["base_url"] == "${UP_URL}"
