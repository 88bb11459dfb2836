"""The command line: `gateway serve | validate-config | explain | schema` parse and dispatch.

(Each command's behaviour is tested with its module: tests/cli/test_config_validate_command.py,
tests/cli/test_explain_command.py, tests/cli/test_schema_cli.py, and the reload tests for
`serve --no-reload`.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import build_parser, main

FIXTURES = Path(__file__).parent.parent / "fixtures" / "explain"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("serve", "validate-config", "explain", "diff", "test", "replay", "schema", "hash-key"):
        assert command in out


def test_explain_is_wired(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRIMARY_API_KEY", raising=False)
    assert main(["explain", "gpt-4", "--config", str(FIXTURES), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["route"], report["match"]["kind"]) == ("chat", "alias")
    assert main(["explain", "no-such-model", "--config", str(FIXTURES / "10-providers.yaml")]) == 1
    assert capsys.readouterr().out.startswith("model 'no-such-model': no route")


def test_explain_reads_the_config_dir_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_CONFIG", str(FIXTURES))
    assert main(["explain", "deepseek-chat"]) == 0
    assert capsys.readouterr().out.startswith("model 'deepseek-chat' (chat API) -> route 'deepseek-any'")


def test_explain_rejects_an_unknown_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "gpt-4", "--format", "yaml"])
    assert exit_info.value.code == 2  # usage error, like validate-config
    assert "invalid choice: 'yaml'" in capsys.readouterr().err


def test_serve_no_reload_flag() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve"]).no_reload is False
    assert parser.parse_args(["serve", "--no-reload"]).no_reload is True
