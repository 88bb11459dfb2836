"""`.ci/run` checks, not hopes: after the README's test command it enforces the coverage floor, ruff and
strict mypy, and pyproject.toml configures those checks without a blanket escape hatch."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CI_RUN = REPO_ROOT / ".ci" / "run"
README_TEST = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/pytest"


@pytest.fixture(scope="module")
def commands() -> list[str]:
    """The script's command lines, comments and blank lines dropped."""
    lines = [line.strip() for line in CI_RUN.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_ci_stops_at_the_first_failure(commands: list[str]) -> None:
    assert "set -euo pipefail" in commands[:3]


def test_ci_checks_coverage_lint_and_types_after_the_tests(commands: list[str]) -> None:
    tests = commands.index(README_TEST)
    after = commands[tests + 1 :]
    floors = [
        int(found[1]) for line in after if (found := re.search(r"coverage report --fail-under=(\d+)", line))
    ]
    assert len(floors) == 1 and 0 < floors[0] <= 100, after
    for check in (".venv/bin/ruff check .", ".venv/bin/ruff format --check .", ".venv/bin/mypy"):
        assert check in after, f"{check!r} must run after the tests"


def test_ci_collects_coverage_of_the_package(commands: list[str]) -> None:
    before = commands[: commands.index(README_TEST)]
    assert any("PYTEST_ADDOPTS" in line and "--cov=gateway" in line for line in before)


def test_mypy_is_strict_over_the_package(pyproject: dict[str, Any]) -> None:
    mypy = pyproject["tool"]["mypy"]
    assert mypy["strict"] is True and mypy["files"] == ["gateway"]
    assert "ignore_errors" not in mypy
    for override in mypy.get("overrides", []):
        assert not override.get("ignore_errors"), f"blanket ignore_errors for {override['module']}"


def test_coverage_follows_gateway_subprocesses(pyproject: dict[str, Any]) -> None:
    run = pyproject["tool"]["coverage"]["run"]
    assert run["source"] == ["gateway"] and "subprocess" in run["patch"]
    extras = " ".join(pyproject["project"]["optional-dependencies"]["test"])
    for tool in ("mypy", "pytest-cov", "coverage"):
        assert re.search(rf"(^|\s){tool}\b", extras), f"{tool} is not in the test extras"
