"""`gateway serve` (`create_app`) refuses exactly what `gateway validate-config` refuses, at file:line:col.

A table of realistic broken route files, one problem each: every keys/auth/settings rule `serve` has,
plus a few route rules. Each is loaded the way `serve` does (`create_app`, which raises `ConfigError`) and
the way `validate-config` does (`run_validate`, and once the real CLI in a subprocess); both must name
the same place and message, with a hint. The valid ones must pass both.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.api.app import create_app
from gateway.api.state import app_state
from gateway.config import Diagnostic
from gateway.errors import ConfigError
from gateway.validate_command import EXIT_INVALID, EXIT_VALID, run_validate

HASH_A = "sha256:" + "a" * 64
MOCK = "providers:\n  mock:\n    type: mock\nroutes:\n  chat:\n    targets:\n      - provider: mock\n"


@dataclass(frozen=True)
class Case:
    yaml: str  # appended to a valid mock provider and route
    where: str  # "line:column" of the error
    message: str  # a fragment of its message
    environ: dict[str, str] = field(default_factory=dict)


BROKEN = {
    "auth-keys-without-a-key": Case("auth: keys\n", "8:7", "auth: keys but no key is configured"),
    "two-keys-one-secret": Case(
        "keys:\n  a:\n    secret: ${AGREE_A}\n  b:\n    secret: ${AGREE_B}\n",
        "12:13",
        "keys 'a' and 'b' have the same secret (the first at ",
        {"AGREE_A": "sk-same", "AGREE_B": "sk-same"},
    ),
    "key-shares-the-api-key-variable": Case(
        "keys:\n  a:\n    secret: ${AGREE_A}\n",
        "10:13",
        "keys 'API_KEY' and 'a' have the same secret",
        {"AGREE_A": "sk-same", "API_KEY": "sk-same"},
    ),
    "key-named-api-key-with-the-variable-set": Case(
        f"keys:\n  API_KEY:\n    secret: {HASH_A}\n",
        "9:3",
        "key name 'API_KEY' is reserved for the API_KEY variable",
        {"API_KEY": "sk-simple"},
    ),
    "secret-variable-set-but-empty": Case(
        "keys:\n  a:\n    secret: ${AGREE_A}\n", "10:13", "key 'a' has no secret", {"AGREE_A": ""}
    ),
    "secret-variable-unset": Case(
        "keys:\n  a:\n    secret: ${AGREE_A}\n", "10:13", "environment variable AGREE_A is not set"
    ),
    "literal-secret": Case(
        "keys:\n  a:\n    secret: sk-live-123\n", "10:13", "keys.a.secret: A key secret is"
    ),
    "key-without-secret": Case("keys:\n  a:\n    role: admin\n", "9:3", "missing the required key 'secret'"),
    "unknown-role": Case(
        f"keys:\n  a:\n    secret: {HASH_A}\n    role: root\n", "11:11", "keys.a.role must be one of"
    ),
    "zero-request-limit": Case(
        f"keys:\n  a:\n    secret: {HASH_A}\n    limits: {{requests_per_minute: 0}}\n",
        "11:35",
        "requests_per_minute must be >= 1",
    ),
    "boolean-token-limit": Case(
        f"keys:\n  a:\n    secret: {HASH_A}\n    limits:\n      tokens_per_day: true\n",
        "12:23",
        "tokens_per_day must be an integer",
    ),
    "auth-typo": Case("auth: key\n", "8:7", "auth must be one of"),
    "store-scheme-only": Case("settings:\n  stats_store: redis\n", "9:16", "settings.stats_store must be"),
    "store-unknown-scheme": Case(
        "settings:\n  stats_store: postgres://db/usage\n", "9:16", "settings.stats_store must be"
    ),
    "store-variable-empty": Case(
        "settings:\n  stats_store: ${AGREE_STORE:-}\n", "9:16", "settings.stats_store must be"
    ),
    "store-prefix-empty": Case(
        "settings:\n  stats_store_prefix: ${AGREE_PREFIX:-}\n", "9:23", "stats_store_prefix must be"
    ),
    "flush-interval-zero": Case("settings:\n  stats_flush_interval: 0\n", "9:25", "stats_flush_interval"),
    "route-unknown-provider": Case(
        "  other:\n    targets:\n      - provider: mokc\n", "10:19", "unknown provider"
    ),
    "route-model-name-twice": Case(
        "  other:\n    model: chat\n    targets:\n      - provider: mock\n", "9:12", "model name 'chat'"
    ),
    "route-weighted-all-zero": Case(
        "  split:\n    strategy: weighted\n    targets:\n      - {provider: mock, weight: 0}\n",
        "10:5",
        "every target has weight 0",
    ),
}

VALID = {
    "open": Case("", "", ""),
    "keys-and-simple-mode": Case(
        "keys:\n  a:\n    secret: ${AGREE_A}\n    models: [chat]\n    limits: {requests_per_minute: 5}\n",
        "",
        "",
        {"AGREE_A": "sk-a", "API_KEY": "sk-admin"},
    ),
    "auth-none-ignores-keys": Case(f"auth: none\nkeys:\n  a:\n    secret: {HASH_A}\n", "", ""),
    "redis-store": Case(
        "settings:\n  stats_store: redis://127.0.0.1:6379/0\n  stats_flush_interval: 2\n", "", ""
    ),
}


def write(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(MOCK + case.yaml, encoding="utf-8")
    return path


def environment(monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    """`create_app` reads os.environ, like `gateway serve`: make it hold exactly the case's variables."""
    for name in ("API_KEY", "AGREE_A", "AGREE_B", "AGREE_STORE", "AGREE_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    for name, value in case.environ.items():
        monkeypatch.setenv(name, value)


def validate(path: Path, case: Case) -> tuple[int, str]:
    out = io.StringIO()
    status = run_validate([str(path)], out=out, environ=case.environ)
    return status, out.getvalue()


@pytest.mark.parametrize("case", BROKEN.values(), ids=BROKEN.keys())
def test_serve_and_validate_refuse_the_same_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    path = write(tmp_path, case)
    environment(monkeypatch, case)
    with pytest.raises(ConfigError) as refused:
        create_app(path, reload=False, metrics=False)
    errors: list[Diagnostic] = [d for d in refused.value.diagnostics if d.is_error]
    assert len(errors) == 1, [str(d) for d in errors]
    [error] = errors
    assert f"{error.line}:{error.column}" == case.where, str(error)
    assert error.path == str(path) and case.message in error.message and error.hint

    status, output = validate(path, case)
    assert status == EXIT_INVALID
    assert f"{path}:{case.where}: error: {error.message}\n  hint: {error.hint}\n" in output


@pytest.mark.parametrize("case", VALID.values(), ids=VALID.keys())
def test_serve_and_validate_accept_the_same_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case
) -> None:
    path = write(tmp_path, case)
    environment(monkeypatch, case)
    app = create_app(path, reload=False, metrics=False)
    assert app_state(app).access_settings.mode in ("open", "keys", "none")
    status, output = validate(path, case)
    assert status == EXIT_VALID, output


def test_the_access_model_follows_the_sections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = VALID["keys-and-simple-mode"]
    environment(monkeypatch, case)
    settings = app_state(create_app(write(tmp_path, case), reload=False, metrics=False)).access_settings
    assert settings.mode == "keys"
    team, admin = settings.keys.keys
    assert (team.name, team.models, team.limits.requests_per_minute, team.role) == ("a", ("chat",), 5, "user")
    assert (admin.name, admin.role) == ("API_KEY", "admin")
    assert settings.keys.find("sk-a") is team and settings.keys.find("sk-admin") is admin


def test_the_real_cli_refuses_with_file_line_column(tmp_path: Path) -> None:
    case = BROKEN["two-keys-one-secret"]
    path = write(tmp_path, case)
    environ = {key: value for key, value in os.environ.items() if key != "API_KEY"} | case.environ
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "validate-config", str(path)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_INVALID, done.stdout + done.stderr
    first, hint, summary = done.stdout.splitlines()
    assert first == f"{path}:12:13: error: keys 'a' and 'b' have the same secret (the first at {path}:10:13)"
    assert hint.startswith("  hint: give every key its own secret")
    assert summary == "invalid: 1 error, 0 warnings in 1 file"
    assert "sk-same" not in done.stdout + done.stderr  # the shared secret itself is never shown
