"""`gateway validate-config`: output lines, formats and exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.validate_command import run_validate

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"


def validate(
    paths: list[str], fmt: str = "text", environ: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = run_validate(paths, fmt, out=out, environ={} if environ is None else environ)
    return status, out.getvalue().splitlines()


def test_default_routes_are_valid_with_warnings_only() -> None:
    routes = str(ROOT / "routes")
    status, lines = validate([routes])
    assert status == 0
    assert lines == [
        f"{routes}/anthropic.yaml:11:14: warning: provider 'anthropic' is unavailable: environment variable "
        "ANTHROPIC_API_KEY is not set",
        "  hint: set ANTHROPIC_API_KEY in the gateway's environment; until then its routes fail over to "
        "other targets or answer 503",
        f"{routes}/deepseek.yaml:11:14: warning: provider 'deepseek' is unavailable: environment variable "
        "DEEPSEEK_API_KEY is not set",
        "  hint: set DEEPSEEK_API_KEY in the gateway's environment; until then its routes fail over to other "
        "targets or answer 503",
        f"{routes}/lingyiwanwu.yaml:9:14: warning: provider 'lingyiwanwu' is unavailable: "
        "environment variable LINGYIWANWU_API_KEY is not set",
        "  hint: set LINGYIWANWU_API_KEY in the gateway's environment; until then its routes fail over to "
        "other targets or answer 503",
        "valid: 5 files, 5 providers, 8 routes (3 warnings)",
    ]


def test_default_routes_with_keys_print_only_the_summary() -> None:
    status, lines = validate(
        [str(ROOT / "routes")],
        environ={"DEEPSEEK_API_KEY": "k", "LINGYIWANWU_API_KEY": "k", "ANTHROPIC_API_KEY": "k"},
    )
    assert (status, lines) == (0, ["valid: 5 files, 5 providers, 8 routes"])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "unknown_provider.yaml",
            [
                "{path}:8:19: error: route 'chat' targets unknown provider 'mokc'",
                "  hint: did you mean 'mock'?",
            ],
        ),
        (
            "literal_api_key.yaml",
            [
                "{path}:5:14: error: providers.deepseek.api_key: An API key must be an environment variable "
                "reference such as ${{DEEPSEEK_API_KEY}}, never a literal secret.",
                "  hint: An environment variable reference such as ${{DEEPSEEK_API_KEY}} or "
                "${{KEY:-default}}; a literal key never goes in a route file.",
            ],
        ),
        (
            "duplicate_key.yaml",
            [
                '{path}:4:5: error: duplicate key "type" (first at line 3)',
                "  hint: a key may appear once per mapping; merge or remove the repeated one",
            ],
        ),
    ],
)
def test_broken_file_prints_positioned_errors_and_exits_1(name: str, expected: list[str]) -> None:
    path = str(FIXTURES / "broken" / name)
    status, lines = validate([path])
    assert status == 1
    assert lines == [line.format(path=path) for line in expected] + ["invalid: 1 error, 0 warnings in 1 file"]


def test_duplicate_route_across_files() -> None:
    directory = FIXTURES / "duplicate_route"
    status, lines = validate([str(directory)])
    assert status == 1
    assert lines[0] == (
        f"{directory}/b.yaml:6:3: error: route 'chat' is defined twice: here and at {directory}/a.yaml:5:3"
    )
    assert lines[-1] == "invalid: 1 error, 0 warnings in 2 files"


@pytest.mark.parametrize(
    ("paths", "fmt", "first_line"),
    [
        (["does/not/exist"], "text", "does/not/exist: error: no such file or directory"),
        ([str(FIXTURES)], "text", f"{FIXTURES}: error: no route files (*.yaml, *.yml) in this directory"),
        (["routes"], "yaml", "unknown format 'yaml'; use one of: text, json, github"),
    ],
)
def test_usage_errors_exit_2(paths: list[str], fmt: str, first_line: str) -> None:
    status, lines = validate(paths, fmt)
    assert status == 2
    assert lines[0] == first_line


def test_json_format() -> None:
    path = str(FIXTURES / "broken" / "unknown_key.yaml")
    status, lines = validate([path], "json")
    report = json.loads("\n".join(lines))
    assert status == 1 and report["exit_code"] == 1 and report["valid"] is False
    assert report["files"] == [path] and (report["errors"], report["warnings"]) == (1, 0)
    assert report["diagnostics"] == [
        {
            "path": path,
            "line": 4,
            "column": 5,
            "severity": "error",
            "code": "schema",
            "message": "unknown key 'retires' in providers.local",
            "hint": "did you mean 'retry'?",
        }
    ]

    status, lines = validate([str(ROOT / "routes")], "json")
    report = json.loads("\n".join(lines))
    assert status == 0 and report["valid"] is True and report["warnings"] == 3
    assert report["providers"] == ["anthropic", "deepseek", "lingyiwanwu", "mock", "ollama"]
    assert len(report["version"]) == 12 and "yi" in report["routes"]


def test_github_format_annotates_files() -> None:
    path = str(FIXTURES / "broken" / "unknown_provider.yaml")
    status, lines = validate([path], "github")
    assert status == 1
    assert lines == [
        f"::error file={path},line=8,col=19,title=gateway config semantic::route 'chat' targets unknown "
        "provider 'mokc'%0Ahint: did you mean 'mock'?",
        "invalid: 1 error, 0 warnings in 1 file",
    ]
    status, lines = validate(["missing, file: x.yaml"], "github")
    assert status == 2
    assert lines[0].startswith(
        "::error file=missing%2C file%3A x.yaml,title=gateway config usage::no such file"
    )


def test_cli_wires_validate_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "k")
    monkeypatch.setenv("LINGYIWANWU_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.chdir(ROOT)
    assert main(["validate-config"]) == 0  # default path: routes
    assert capsys.readouterr().out.splitlines() == ["valid: 5 files, 5 providers, 8 routes"]
    assert main(["validate-config", str(FIXTURES / "duplicate_route"), "--format", "json"]) == 1
    assert json.loads(capsys.readouterr().out)["errors"] == 1
