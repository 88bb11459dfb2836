"""Budgets in route files: the forms that load, and the errors (at file:line:col) and warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.budget_models import Budget
from gateway.config.loader import LoadResult, load_config

SECRET = "sha256:" + "ab" * 32
PROVIDERS = """\
providers:
  sim: {type: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${SIM_KEY:-x}"}
routes:
  priced:
    targets: [{provider: sim, model: gpt-x}]
  free:
    targets: [{provider: sim}]
"""
KEY_LINE = 9  # the line of `team:` in the file `load` writes
PRICES = """\
prices:
  models:
    - {provider: sim, model: gpt-x, input: 1, output: 2}
"""


def load(
    tmp_path: Path, limits: str, *, prices: str = PRICES, models: str = "[priced]", settings: str = ""
) -> LoadResult:
    text = PROVIDERS + f"keys:\n  team: {{secret: '{SECRET}', models: {models}, limits: {limits}}}\n" + prices
    text += settings
    (tmp_path / "routes.yaml").write_text(text, encoding="utf-8")
    return load_config([tmp_path / "routes.yaml"], environ={})


def test_every_form_loads_into_integer_nano_units(tmp_path: Path) -> None:
    result = load(
        tmp_path,
        "{mode: shadow, budget_per_day: 5.00, budget_per_month: {limit: 100, mode: enforce}, "
        "budget_per_window: {limit: 2.5, window: 3600}}",
        settings="settings: {budget_default_max_output_tokens: 512}\n",
    )
    assert result.config is not None, result.diagnostics
    (key,) = result.config.access.keys
    assert key.limits.budgets == (
        Budget("budget_per_day", 5_000_000_000, None, True),
        Budget("budget_per_month", 100_000_000_000, None, False),
        Budget("budget_per_window", 2_500_000_000, 3600, True),
    )
    assert key.limits.any
    assert result.config.access.budget_default_max_output_tokens == 512
    assert not result.warnings


@pytest.mark.parametrize(
    ("limits", "prices", "message", "at"),
    [
        ("{budget_per_day: 0.0000001}", PRICES, "more than 6 decimal places", "0.0000001"),
        (
            "{budget_per_day: 5}",
            "",
            "has budget_per_day but the config has no prices: section",
            "budget_per_day",
        ),
    ],
)
def test_errors_name_the_place(tmp_path: Path, limits: str, prices: str, message: str, at: str) -> None:
    result = load(tmp_path, limits, prices=prices)
    assert result.config is None
    (error,) = result.errors
    assert message in error.message
    assert error.location == f"{tmp_path / 'routes.yaml'}:{KEY_LINE}:{column(tmp_path, at)}"


def column(tmp_path: Path, text: str) -> int:
    """1-based column of `text` on the key's line of the route file."""
    return (tmp_path / "routes.yaml").read_text().splitlines()[KEY_LINE - 1].index(text) + 1


@pytest.mark.parametrize(
    "limits",
    ["{budget_per_day: -1}", "{budget_per_day: 0}", "{budget_per_window: {limit: 1}}",
     "{budget_per_window: {limit: 1, window: 10}}", "{budget_per_month: {limit: 1, mode: maybe}}"],
)  # fmt: skip
def test_the_schema_refuses_what_is_not_a_budget(tmp_path: Path, limits: str) -> None:
    result = load(tmp_path, limits)
    assert result.config is None and result.errors


def test_a_budget_over_unpriced_targets_is_a_warning(tmp_path: Path) -> None:
    result = load(tmp_path, "{budget_per_day: 5}", models="['*']")
    assert result.config is not None
    (warning,) = result.warnings
    assert "sim/free (route free)" in warning.message and "budget_unpriced" in warning.hint
    assert warning.location == f"{tmp_path / 'routes.yaml'}:{KEY_LINE}:{column(tmp_path, 'budget_per_day')}"
    assert not load(tmp_path, "{budget_per_day: 5}").warnings  # the key may use priced models only
