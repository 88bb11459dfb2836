"""The README's quick start is the contract with new users: keep it and CI in step."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.config import load_config

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
    assert test in ci_lines  # what runs after it (coverage, lint, types): tests/infra/test_ci_checks.py


def test_ci_installs_the_services_the_tests_start_before_running_them() -> None:
    """Without redis-server the Redis tests skip; CI installs it first so that they run there."""
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    _, test = quick_start_commands()
    install = next(index for index, line in enumerate(ci_lines) if "apt-get install" in line)
    assert ci_lines[install].startswith("command -v redis-server >/dev/null ||")
    assert "redis-server" in ci_lines[install].split("apt-get install", 1)[1]
    assert install < ci_lines.index(test)


# Providers a README example refers to without defining them (each example shows one concern).
_SUPPLEMENT = {
    "lingyiwanwu": "  lingyiwanwu:\n    type: openai\n    base_url: https://api.lingyiwanwu.com/v1\n",
    "local": "  local:\n    type: ollama\n",
    "mock": "  mock:\n    type: mock\n",
}


def test_readme_config_examples_load(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    examples = [block for block in re.findall(r"```yaml\n(.*?)```", readme, re.S) if ":" in block]
    assert len(examples) >= 3
    for number, example in enumerate(examples):
        directory = tmp_path / f"example-{number}"
        directory.mkdir()
        (directory / "example.yaml").write_text(example)
        missing = [name for name in _SUPPLEMENT if name in example and f"  {name}:" not in example]
        if missing:
            (directory / "supplement.yaml").write_text(
                "providers:\n" + "".join(_SUPPLEMENT[name] for name in missing)
            )
        result = load_config(
            [directory], environ={"DEEPSEEK_API_KEY": "k", "SEARCH_TEAM_KEY": "k1", "OPS_KEY": "k2"}
        )
        errors = [str(d) for d in result.diagnostics if d.severity == "error"]
        assert result.ok, f"README example {number} does not load:\n" + "\n".join(errors)
