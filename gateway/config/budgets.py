"""Budgets of a key (`limits: {budget_per_day: 5.00}`): read into `Budget` models, and checked.

A budget is an amount of the `prices:` currency, written like a price (at most 6 decimal places) and kept
as an integer of nano-units (1e-9), the unit every cost is summed in, so no float ever takes part in the
arithmetic. Each is a number or `{limit, mode}`; `budget_per_window` is always `{limit, window}` (seconds).
The schema checks types and ranges; here: the decimals, that a `prices:` section exists (without one no
request can be priced, so every request of the key would be refused), and, as a warning, targets of the
models a key may use that have no price (their requests are refused while an enforced budget applies).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from .budget_models import BUDGET_NAMES, Budget
from .diagnostics import Diagnostic, Severity
from .models import RouteConfig
from .prices import NANO, PriceTable, build_prices
from .sections import SectionPlaces
from .yaml_source import DocumentPath

MAX_DECIMALS = 6
_MICRO = 10**MAX_DECIMALS


def build_budgets(spec: Mapping[str, Any], default_mode: str) -> tuple[Budget, ...]:
    """The budgets of a `limits:` block that passed the schema and `check_budgets`."""
    budgets = []
    for name in BUDGET_NAMES:
        written = spec.get(name)
        if written is None:
            continue
        window = None
        mode = default_mode
        if isinstance(written, Mapping):
            window = written.get("window")
            mode = written.get("mode", default_mode)
            written = written["limit"]
        budgets.append(Budget(name, nano_amount(written), window, mode == "shadow"))
    return tuple(budgets)


def nano_amount(amount: float | int | str) -> int:
    """`2.5` -> 2_500_000_000: exact from the written decimal (never through a binary float product)."""
    return int(Decimal(str(amount)) * NANO)


def check_budgets(
    sections: Mapping[str, Any], places: SectionPlaces, routes: Sequence[RouteConfig]
) -> list[Diagnostic]:
    """Finer than 6 decimals and budgets without `prices:` (errors); unpriced targets (a warning)."""
    diagnostics: list[Diagnostic] = []
    keys: Mapping[str, Any] = sections.get("keys") or {}
    has_prices = bool((sections.get("prices") or {}).get("models"))
    table: PriceTable | None = None
    if has_prices:
        try:
            table = build_prices(sections)
        except (KeyError, ValueError, ArithmeticError):  # price errors are check_prices' to report
            table = None
    for key_name, spec in keys.items():
        limits = spec.get("limits") or {}
        written = [name for name in BUDGET_NAMES if limits.get(name) is not None]
        for name in written:
            path: DocumentPath = ("keys", key_name, "limits", name)
            value = limits[name]
            amount_path = (*path, "limit") if isinstance(value, Mapping) else path
            amount = value["limit"] if isinstance(value, Mapping) else value
            if (Decimal(str(amount)) * _MICRO) % 1:
                diagnostics.append(
                    _diagnostic(
                        places,
                        amount_path,
                        f"key {key_name!r}: {name} {amount} has more than {MAX_DECIMALS} decimal places",
                        f"write the amount in the prices: currency with at most {MAX_DECIMALS} decimals",
                    )
                )
            if not has_prices:
                diagnostics.append(
                    _diagnostic(
                        places,
                        path,
                        f"key {key_name!r} has {name} but the config has no prices: section",
                        "a budget is spent by the cost of requests: add prices: {currency, models: [...]} "
                        "for the models this key uses",
                        key=True,
                    )
                )
        if written and table is not None:
            missing = sorted(set(_unpriced_targets(spec.get("models") or (), routes, table)))
            if missing:
                shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                diagnostics.append(
                    _diagnostic(
                        places,
                        ("keys", key_name, "limits", written[0]),
                        f"key {key_name!r} has a budget, but targets of models it may use have no price: "
                        f"{shown}",
                        "their requests are refused (403 budget_unpriced) while an enforced budget "
                        "applies: add prices for them, or narrow the key's models",
                        severity="warning",
                        key=True,
                    )
                )
    return diagnostics


def _unpriced_targets(
    globs: Sequence[str], routes: Sequence[RouteConfig], table: PriceTable
) -> Iterator[str]:
    """`provider/model (route R)` for each target of a route the key may use that has no price. A glob
    route's target without its own model serves whatever is asked: it cannot be judged here."""
    for route in routes:
        names = (route.model, *route.aliases)
        if globs and not any(fnmatch.fnmatchcase(name, glob) for glob in globs for name in names):
            continue
        for target in route.targets:
            # Without a model of its own a target gets the name asked for: the route's or an alias.
            asked = () if route.is_pattern else names
            for model in (target.model,) if target.model else asked:
                if table.price(target.provider, model) is None:
                    yield f"{target.provider}/{model} (route {route.name})"


def _diagnostic(
    places: SectionPlaces,
    path: DocumentPath,
    message: str,
    hint: str,
    *,
    severity: Severity = "error",
    key: bool = False,
) -> Diagnostic:
    where, line, column = places.find(path, key=key)
    return Diagnostic(where, line, column, message, hint=hint, code="semantic", severity=severity)
