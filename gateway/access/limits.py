"""What a limit check answers, and how it is said over HTTP (OpenAI's `x-ratelimit-*` headers).

Windows, shared by every store so they count the same way:

- requests per minute: a sliding log of admission times over the last 60 s. Exact: the request that
  would be number `limit + 1` inside any 60 s window is refused, also under concurrency.
- tokens per minute / per day: spent tokens in buckets (1 s wide for the minute, 15 min for the day),
  summed over the buckets inside the window. A request is admitted while the sum is below the limit;
  its own tokens are known only when it ends (upstream `usage`). So the limit can be overshot by the
  tokens of the requests in flight when it was reached, plus those that ended within the last usage
  flush interval (`settings.stats_flush_interval`, default 1 s), each at most its prompt plus
  `max_tokens`. Request limits have no such slack.

Shadow mode (`KeyLimits.shadow`): a limit in shadow mode is checked like an enforced one, but a request
over it is admitted and named in `Admission.would_block`. Its window counts only the requests it would
have admitted (a request over a shadow `requests_per_minute` is not added to the log), so the would-block
count is the number of requests the limit would refuse if it were on. Each shadow limit is judged on its
own, and only for requests the enforced limits admit (a request refused for real is not also a
would-block). Token windows count the tokens actually spent, those of requests a shadow token limit
would have refused included (they ran): so a shadow token limit can count more would-blocks than
enforcing it would refuse. Request limits are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.access.budget_windows import BudgetVerdict
from gateway.access.keys import KeyLimits
from gateway.config.budget_models import BudgetName
from gateway.config.models import LimitName
from gateway.errors import RateLimited

MINUTE = 60.0
DAY = 86400.0
MINUTE_BUCKET = 1.0  # seconds per token bucket of the per-minute window
DAY_BUCKET = 900.0  # seconds per token bucket of the per-day window

Exceeded = LimitName

_WHAT = {
    "requests_per_minute": "requests per minute",
    "tokens_per_minute": "tokens per minute",
    "tokens_per_day": "tokens per day",
}


@dataclass(frozen=True, slots=True)
class LimitState:
    limit: int
    remaining: int
    reset: float  # seconds until the window is back to its full allowance


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer of a store to "may this key send one more request now?"."""

    allowed: bool
    requests: LimitState | None = None
    tokens: LimitState | None = None  # the per-minute token window, else the per-day one
    exceeded: Exceeded | None = None
    retry_after: float = 0.0  # seconds until the exceeded limit admits a request again
    would_block: tuple[Exceeded | BudgetName, ...] = ()  # shadow limits this admitted request is over
    budget: BudgetVerdict | None = None  # the key's budgets (refused: `budget.exceeded` is set)
    hold_id: str | None = None  # the reservation of an admitted request with budgets, to settle

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for suffix, state in (("requests", self.requests), ("tokens", self.tokens)):
            if state is not None:
                out[f"x-ratelimit-limit-{suffix}"] = str(state.limit)
                out[f"x-ratelimit-remaining-{suffix}"] = str(state.remaining)
                out[f"x-ratelimit-reset-{suffix}"] = format_duration(state.reset)
        return out

    def error(self, key_name: str, limits: KeyLimits) -> RateLimited:
        """The 429 for a refused admission (message names the key and the limit, never a secret)."""
        assert self.exceeded is not None  # budget refusals are budgets.budget_error's
        limit = getattr(limits, self.exceeded)
        headers = self.headers()
        headers["retry-after"] = str(max(1, math.ceil(self.retry_after)))
        headers["retry-after-ms"] = str(max(1, math.ceil(self.retry_after * 1000)))
        what = _WHAT[self.exceeded]
        error = RateLimited(
            f"Rate limit reached for key {key_name!r} on {what}: limit {limit}. "
            f"Please try again in {format_duration(self.retry_after)}.",
            code="rate_limit_exceeded",
            headers=headers,
        )
        if self.exceeded != "requests_per_minute":
            error.error_type = "tokens"  # OpenAI's type for token limits ("requests" for request limits)
        return error


def format_duration(seconds: float) -> str:
    """OpenAI's reset format: `20ms`, `1s`, `1.5s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{text}"
    if minutes:
        return f"{int(minutes)}m{text}"
    return text
