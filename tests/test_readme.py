"""The README's quick start is the contract with new users: keep it and CI in step."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)][:2]


def test_quick_start_is_two_commands_install_and_serve_then_test() -> None:
    serve, test = quick_start_commands()
    assert "\n" not in serve and "\n" not in test
    assert "pip install" in serve and serve.endswith("gateway serve")
    assert "pip install" in test and "[test]" in test and test.endswith("pytest")


def test_ci_runs_the_readme_test_command() -> None:
    _, test = quick_start_commands()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test in ci_lines
