"""Budgets of a key on the request path: what a request may cost at most, its hold, and the 429.

Before dispatch a request of a key with budgets is priced at its maximum: its prompt tokens (the gateway's
bound, `api/recording.most_prompt_tokens`: its UTF-8 bytes) plus its max output tokens (`max_tokens`,
`max_completion_tokens`, `max_output_tokens`; else `settings.budget_default_max_output_tokens`), at the
prices of the most expensive target of its route (a failover may land there), prompt tokens at the dearest
of the input, cache-read and cache-write prices. The store checks and holds that amount in the same atomic
step as the key's limits (`UsageStore.admit`); when the request ends its `BudgetHold` is settled once with
the real cost (`AccessController.settle`). A request that cannot be priced (a target without a price) is
refused with 403 `budget_unpriced` while an enforced budget applies; shadow budgets let it through and
count it as a would-block.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.access.budget_windows import BudgetState, BudgetVerdict
from gateway.access.limits import format_duration
from gateway.config.budget_models import Budget, BudgetName
from gateway.config.prices import PICO_PER_NANO, Price, PriceTable, format_cost
from gateway.errors import PermissionDenied, RateLimited
from gateway.routing.table import RouteMatch

OUTPUT_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")  # the first one given counts
REMAINING_HEADER = "x-gateway-budget-remaining"
_WHAT: dict[BudgetName, str] = {
    "budget_per_day": "per UTC day",
    "budget_per_month": "per UTC month",
    "budget_per_window": "per rolling window",
}


@dataclass(slots=True)
class BudgetHold:
    """One request's claim on its key's budgets, from admission to settlement."""

    key: str
    budgets: tuple[Budget, ...]
    amount: int | None  # the maximum cost (nano-units); None: it could not be priced (shadow budgets only)
    currency: str
    unpriced: str = ""  # with amount None: the target without a price, as provider/model
    hold_id: str | None = None  # the store's id of the reservation; None: nothing held
    verdict: BudgetVerdict | None = None
    settled: bool = field(default=False)

    def headers(self) -> dict[str, str]:
        """`x-gateway-budget-remaining: 1.250000 USD`: what the tightest budget has left after this hold."""
        remaining = self.verdict.remaining() if self.verdict is not None else None
        if remaining is None:
            return {}
        return {REMAINING_HEADER: f"{format_cost(remaining)} {self.currency}"}


def max_output_tokens(body: Mapping[str, Any], api: str, default: int) -> int:
    """The most output tokens the request allows; embeddings have none."""
    if api == "openai.embeddings":
        return 0
    for name in OUTPUT_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def maximum_cost(
    prices: PriceTable, match: RouteMatch, prompt_tokens: int, output_tokens: int
) -> tuple[int | None, str]:
    """(the most the request can cost over its route's targets in nano-units, rounded up; "") or (None,
    the first target without a price, as `provider/model`)."""
    highest = 0
    for target in match.route.targets:
        model = target.model or match.model  # as the attempt loop picks it (resilience/dispatch.py)
        price = prices.price(target.provider, model)
        if price is None:
            return None, f"{target.provider}/{model}"
        highest = max(highest, prompt_tokens * _dearest_prompt_price(price) + output_tokens * price.output)
    return math.ceil(highest / PICO_PER_NANO), ""


def _dearest_prompt_price(price: Price) -> int:
    cached = price.input if price.cached_input is None else price.cached_input
    written = price.input if price.cache_write is None else price.cache_write
    return max(price.input, cached, written)


def unpriced_error(key: str, model: str, target: str) -> PermissionDenied:
    return PermissionDenied(
        f"The key {key!r} has a budget, and the model `{model}` cannot be priced: its target {target} has "
        "no entry under prices:, so the gateway cannot bound what the request would cost. Add a price "
        "for it, or ask for a priced model.",
        param="model",
        code="budget_unpriced",
    )


def budget_error(
    key: str,
    state: BudgetState,
    amount: int,
    currency: str,
    headers: dict[str, str],
    now: float | None = None,
) -> RateLimited:
    """The 429 for a request its key's budget `state` cannot fit: names the key, the budget and when it
    has room again, with Retry-After (never a secret)."""
    now = time.time() if now is None else now
    wait = max(0.0, state.resets_at - now)
    headers = dict(headers)
    headers["retry-after"] = str(max(1, math.ceil(wait)))
    headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
    headers[REMAINING_HEADER] = f"{format_cost(state.remaining)} {currency}"
    when = datetime.fromtimestamp(state.resets_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if amount > state.limit:
        tail = (
            f"This request may cost up to {format_cost(amount)} {currency}, more than the whole budget: "
            "lower its max_tokens."
        )
    else:
        tail = (
            f"This request may cost up to {format_cost(amount)} {currency}; {format_cost(state.remaining)} "
            f"{currency} is left ({format_cost(state.spent)} spent, {format_cost(state.reserved)} held by "
            f"requests in flight). It has room again at {when} (in {format_duration(wait)})."
        )
    error = RateLimited(
        f"Budget exceeded for key {key!r}: {state.name} ({_WHAT[state.name]}) of "
        f"{format_cost(state.limit)} {currency}. {tail}",
        code="budget_exceeded",
        headers=headers,
    )
    error.error_type = "insufficient_quota"  # what OpenAI says when the money is gone
    return error
