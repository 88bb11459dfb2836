"""Loading route files into the immutable models: defaults, environment, merging, discovery, version."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.config import (
    Backoff,
    GatewayConfig,
    HealthCheck,
    PoolLimits,
    RetryPolicy,
    Timeouts,
    load_config,
    load_config_or_raise,
)
from gateway.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ROUTES = ROOT / "routes"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"
# Key secrets are hashes (or ${VAR}): a route file never holds a key itself.
SECRET_A = "sha256:" + "a" * 64
SECRET_B = "sha256:" + "b" * 64
KEYS = {"DEEPSEEK_API_KEY": "sk-deepseek", "LINGYIWANWU_API_KEY": "sk-yi", "ANTHROPIC_API_KEY": "sk-ant"}


def test_default_routes_load_without_any_environment_with_three_warnings() -> None:
    result = load_config([DEFAULT_ROUTES], environ={})
    assert result.ok and result.errors == []
    assert [(Path(d.path).name, d.line, d.message) for d in result.warnings] == [
        (
            "anthropic.yaml",
            11,
            "provider 'anthropic' is unavailable: environment variable ANTHROPIC_API_KEY is not set",
        ),
        (
            "deepseek.yaml",
            11,
            "provider 'deepseek' is unavailable: environment variable DEEPSEEK_API_KEY is not set",
        ),
        (
            "lingyiwanwu.yaml",
            9,
            "provider 'lingyiwanwu' is unavailable: environment variable LINGYIWANWU_API_KEY is not set",
        ),
    ]
    config = result.config
    assert config is not None
    assert {name: p.unavailable_reason for name, p in config.providers.items()} == {
        "anthropic": "environment variable ANTHROPIC_API_KEY is not set",
        "deepseek": "environment variable DEEPSEEK_API_KEY is not set",
        "lingyiwanwu": "environment variable LINGYIWANWU_API_KEY is not set",
        "mock": None,
        "ollama": None,
    }
    assert config.providers["deepseek"].api_key is None
    assert config.providers["ollama"].base_url == "http://localhost:11434"
    assert [(r.name, r.model, r.aliases) for r in config.routes] == [
        ("claude", "claude-*", ()),
        ("deepseek-chat", "deepseek-chat", ()),
        ("deepseek-reasoner", "deepseek-reasoner", ()),
        ("yi", "yi-*", ()),
        ("mock", "mock", ("mock-gpt",)),
        ("llama3.2", "llama3.2", ()),
        ("qwen2.5", "qwen2.5", ()),
        ("mistral", "mistral", ()),
    ]
    assert [r.name for r in config.routes if r.is_pattern] == ["claude", "yi"]


def test_default_routes_with_keys_set_have_no_warnings() -> None:
    result = load_config([DEFAULT_ROUTES], environ={**KEYS, "OLLAMA_BASE_URL": "http://gpu-box:11434/"})
    assert result.ok and result.diagnostics == []
    config = result.config
    assert config is not None
    assert config.providers["deepseek"].api_key == "sk-deepseek"
    assert config.providers["lingyiwanwu"].api_key == "sk-yi"
    assert config.providers["ollama"].base_url == "http://gpu-box:11434"  # trailing slash dropped
    assert all(p.unavailable_reason is None for p in config.providers.values())


def test_every_option_reaches_the_models() -> None:
    config = load_config_or_raise([FIXTURES / "valid"], environ={"PRIMARY_KEY": "k1", "TEAM": "ads"})
    primary = config.providers["primary"]
    assert primary.base_url == "https://primary.example/v1"
    assert primary.api_key == "k1" and dict(primary.headers) == {"X-Team": "ads"}
    assert primary.timeouts == Timeouts(connect=5.0, first_byte=20.0)
    assert primary.pool == PoolLimits(max_connections=8)
    assert primary.retry == RetryPolicy(
        attempts=3, backoff=Backoff(base=0.5), retry_on=("429", "503", "timeout"), deadline=90.0
    )
    assert primary.health_check == HealthCheck(enabled=False)
    assert (primary.circuit_breaker.failure_threshold, primary.circuit_breaker.cooldown) == (3, 10.0)
    assert primary.stream_usage is False
    assert config.providers["mock"].mock.text == "hi there" and config.providers["mock"].mock.tokens == 4
    assert isinstance(primary.timeouts.connect, float) and isinstance(primary.retry.deadline, float)

    chat, split, mock = config.routes
    assert chat.aliases == ("gpt-4o", "assistant") and chat.streaming == "starlette"
    assert [(t.provider, t.model, t.priority) for t in chat.targets] == [
        ("primary", "big-model", 1),
        ("local", "qwen2.5", 2),
    ]
    # A route's retry/timeouts override field by field on top of its first target's provider.
    assert chat.retry == dataclasses.replace(primary.retry, attempts=2)
    assert chat.timeouts == dataclasses.replace(primary.timeouts, total=120.0)
    assert split.model == "split-*" and split.strategy == "weighted"
    assert [t.weight for t in split.targets] == [3.0, 0.0]
    assert (mock.retry, mock.timeouts, mock.strategy, mock.streaming) == (None, None, "ordered", "asgi")
    assert chat.position is not None and str(chat.position).endswith("20-routes.yaml:3:3")

    assert config.access.mode == "none" and config.access.ignored_keys == 1  # auth: none ignores team-a
    assert config.access.store.url == "redis://127.0.0.1:6379/0"


def test_unset_secret_marks_only_that_provider_unavailable() -> None:
    result = load_config([FIXTURES / "valid"], environ={})
    assert result.ok
    [warning] = result.diagnostics
    assert warning.severity == "warning" and (warning.line, warning.column) == (6, 14)
    assert "PRIMARY_KEY" in warning.hint
    assert result.config is not None
    assert (
        result.config.providers["primary"].unavailable_reason == "environment variable PRIMARY_KEY is not set"
    )
    assert result.config.providers["local"].unavailable_reason is None


def test_empty_secret_header_variable_marks_provider_unavailable(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        "providers:\n  p:\n    type: openai\n    base_url: https://x.example\n"
        "    headers: {X-Key: '${TOKEN}'}\n",
        encoding="utf-8",
    )
    result = load_config([tmp_path], environ={"TOKEN": ""})
    assert result.config is not None
    assert result.config.providers["p"].unavailable_reason == "environment variable TOKEN is empty"
    assert [(d.line, d.column, d.severity) for d in result.diagnostics] == [(5, 22, "warning")]


def test_environ_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIMARY_KEY", "from-process")
    config = load_config_or_raise([FIXTURES / "valid"])
    assert config.providers["primary"].api_key == "from-process"


def test_load_config_or_raise_carries_the_diagnostics() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_or_raise([FIXTURES / "broken" / "unknown_provider.yaml"], environ={})
    [diagnostic] = caught.value.diagnostics
    assert (diagnostic.line, diagnostic.column) == (8, 19)
    assert str(caught.value).startswith(
        f"{diagnostic.path}:8:19: error: route 'chat' targets unknown provider"
    )


def test_config_is_immutable() -> None:
    config = load_config_or_raise([DEFAULT_ROUTES], environ={})
    with pytest.raises(TypeError):
        config.providers["x"] = config.providers["mock"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.version = "x"  # type: ignore[misc]


def test_version_depends_on_file_names_and_content_only(tmp_path: Path) -> None:
    first = load_config_or_raise([DEFAULT_ROUTES], environ={})
    copy = tmp_path / "elsewhere"
    shutil.copytree(DEFAULT_ROUTES, copy)
    assert load_config_or_raise([copy], environ=KEYS).version == first.version
    assert len(first.version) == 12 and int(first.version, 16) >= 0
    mock = copy / "mock.yaml"
    mock.write_text(mock.read_text() + "# a comment changes the version too\n")
    assert load_config_or_raise([copy], environ={}).version != first.version


def test_sources_and_discovery_skip_hidden_temp_and_nested_files(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("routes: {b: {targets: [{provider: m}]}}\n")
    (tmp_path / "a.yaml").write_text("providers: {m: {type: mock}}\n")
    (tmp_path / "empty.yaml").write_text("# nothing here yet\n")
    for ignored in (".hidden.yaml", ".#a.yaml", "#a.yaml#", "a.yaml~", "~a.yaml", "notes.txt", "a.yaml.swp"):
        (tmp_path / ignored).write_text("this: [is not valid\n")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "c.yaml").write_text("not: [valid\n")
    result = load_config([tmp_path], environ={})
    assert result.ok, [str(d) for d in result.diagnostics]
    assert result.sources == tuple(str(tmp_path / name) for name in ("a.yaml", "b.yml", "empty.yaml"))
    assert result.config is not None and result.config.sources == result.sources


def test_files_and_directories_mix_and_each_file_loads_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("providers: {m: {type: mock}}\n")
    extra = tmp_path / "extra.conf"  # named explicitly, so its suffix does not matter
    extra.write_text("routes: {x: {targets: [{provider: m}]}}\n")
    result = load_config([tmp_path, extra, tmp_path / "a.yaml"], environ={})
    assert result.sources == (str(tmp_path / "a.yaml"), str(extra))
    assert result.config is not None and [r.name for r in result.config.routes] == ["x"]


def test_reserved_sections_merge_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        f"keys: {{a: {{secret: {SECRET_A}}}}}\nsettings: {{stats_store: memory}}\nauth: keys\n"
    )
    (tmp_path / "b.yaml").write_text(
        f"keys: {{b: {{secret: {SECRET_B}}}}}\nsettings: {{stats_flush_interval: 2}}\nauth: keys\n"
    )
    config = load_config_or_raise([tmp_path], environ={})
    assert config.access.mode == "keys"
    assert [(key.name, key.digest) for key in config.access.keys] == [
        ("a", bytes.fromhex(SECRET_A.removeprefix("sha256:"))),
        ("b", bytes.fromhex(SECRET_B.removeprefix("sha256:"))),
    ]
    assert config.access.store.url == "memory"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: [tmp / "missing"], "no such file or directory"),
        (lambda tmp: [tmp], "no route files (*.yaml, *.yml) in this directory"),
        (lambda tmp: [], "no route file or directory given"),
    ],
)
def test_usage_errors(tmp_path: Path, make: Callable[[Path], list[Path]], message: str) -> None:
    result = load_config(make(tmp_path), environ={})
    assert result.is_usage_error and result.config is None
    assert [(d.message, d.line, d.code) for d in result.diagnostics] == [(message, None, "usage")]


def test_loading_is_quick_enough_for_frequent_reloads() -> None:
    start = time.perf_counter()
    for _ in range(10):
        config = load_config_or_raise([DEFAULT_ROUTES], environ={})
    assert isinstance(config, GatewayConfig)
    assert (time.perf_counter() - start) / 10 < 0.25  # about 10 ms on a laptop; generous for CI


def test_an_unknown_settings_key_is_an_error_at_its_position(tmp_path: Path) -> None:
    """A typo in `settings` (here `cors` misspelt) must not be ignored: the setting would silently be off."""
    (tmp_path / "a.yaml").write_text("settings:\n  stats_store: memory\n  corss: {allowed_origins: ['*']}\n")
    result = load_config([tmp_path], environ={})
    assert result.config is None
    rendered = [str(diagnostic) for diagnostic in result.diagnostics]
    assert any("a.yaml:3:3: error: unknown key 'corss' in settings" in line for line in rendered), rendered
