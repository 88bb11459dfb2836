"""The budget of a key as configured (`limits: {budget_per_day: 5.00}`): a value object of the config.

Kept apart from `models.py` so the models module stays small; `budgets.py` reads and checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Budgets in currency (the `prices:` currency): per UTC day, per UTC month, or over a rolling window.
BudgetName = Literal["budget_per_day", "budget_per_month", "budget_per_window"]
BUDGET_NAMES: tuple[BudgetName, ...] = ("budget_per_day", "budget_per_month", "budget_per_window")
DEFAULT_BUDGET_MAX_OUTPUT_TOKENS = 4096  # reserved for a request that names no max output tokens


@dataclass(frozen=True, slots=True)
class Budget:
    """One budget of a key: `limit` in nano-units (1e-9) of the currency, like every cost."""

    name: BudgetName
    limit: int
    window: int | None = None  # seconds of a budget_per_window; None for the calendar ones
    shadow: bool = False
