"""Which inbound APIs a route serves (`apis:`), and the check that each target can be reached from each."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import apis, load_config

ROUTES = """\
providers:
  chatty: {type: openai, base_url: "http://chat.test/v1"}
  claude: {type: anthropic, base_url: "http://claude.test"}
  deepseek:
    type: openai
    base_url: "http://ds.test/v1"
    apis: {chat: true, messages: "http://ds.test/anthropic"}
routes:
  both:
    targets: [{provider: chatty}, {provider: claude}]
  told:
    apis: [chat, messages]
    targets: [{provider: chatty}]
  messages-only:
    apis: [messages]
    default_max_tokens: 1000
    targets: [{provider: deepseek}]
"""


def test_apis_of_providers_and_routes(tmp_path: Path) -> None:
    result = load_config([_write(tmp_path, ROUTES)], environ={})
    assert result.config is not None, [str(d) for d in result.diagnostics]
    providers = result.config.providers
    assert dict(providers["chatty"].apis) == {"openai.chat": "http://chat.test/v1"}
    assert dict(providers["claude"].apis) == {"anthropic.messages": "http://claude.test"}
    assert dict(providers["deepseek"].apis) == {
        "openai.chat": "http://ds.test/v1",
        "anthropic.messages": "http://ds.test/anthropic",
    }
    routes = {route.name: route for route in result.config.routes}
    # By default: every API all targets can be reached from (neither serves embeddings).
    assert routes["both"].apis == ("openai.chat", "anthropic.messages")
    assert (routes["messages-only"].apis, routes["messages-only"].default_max_tokens) == (
        ("anthropic.messages",),
        1000,
    )


def test_a_route_whose_target_cannot_be_reached_is_refused_at_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With today's translators every pair is reachable; without one (as a new API starts out), the route
    that asks for it is refused where it says so, and the provider it cannot reach is named."""
    monkeypatch.setattr(apis, "TRANSLATABLE", apis.TRANSLATABLE - {("anthropic.messages", "openai.chat")})
    result = load_config([_write(tmp_path, ROUTES)], environ={})
    assert result.config is None
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert [(d.line, d.column) for d in errors] == [(12, 5)]  # the `apis:` of route `told`
    assert (
        "target 0 (provider 'chatty', which speaks chat) cannot be reached from messages" in errors[0].message
    )
    # Saying which APIs it serves makes the same route valid.
    fixed = ROUTES.replace("apis: [chat, messages]", "apis: [chat]")
    fixed_result = load_config([_write(tmp_path, fixed)], environ={})
    assert fixed_result.config is not None
    # A route left to its default serves what it can: chat only, here.
    assert {route.name: route.apis for route in fixed_result.config.routes}["both"] == ("openai.chat",)


def test_unknown_api_names_are_schema_errors(tmp_path: Path) -> None:
    text = ROUTES.replace("apis: [messages]", "apis: [completions]")
    result = load_config([_write(tmp_path, text)], environ={})
    assert result.config is None
    assert any("apis" in str(d) for d in result.diagnostics)


def _write(directory: Path, text: str) -> Path:
    (directory / "routes.yaml").write_text(text)
    return directory
