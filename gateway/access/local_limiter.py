"""Limits counted in this process (the SQLite store's limiter): exact within one gateway process.

`admit()` is synchronous and never awaits, so on the event loop the check and the count of one request
happen with no other request in between: 200 concurrent requests against 50 requests/minute admit
exactly 50. Several processes sharing one quota need the Redis store.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator

from gateway.access.budget_ledger import BudgetLedger
from gateway.access.budget_windows import BudgetVerdict
from gateway.access.keys import KeyLimits
from gateway.access.limits import (
    DAY,
    DAY_BUCKET,
    MINUTE,
    MINUTE_BUCKET,
    Admission,
    Exceeded,
    LimitState,
)


class RequestLog:
    """Admission times inside the last minute (a sliding log)."""

    __slots__ = ("times",)

    def __init__(self) -> None:
        self.times: deque[float] = deque()

    def acquire(self, limit: int, now: float) -> tuple[bool, LimitState, float]:
        """(admitted, state after this request, seconds until one more request would be admitted)."""
        times = self.times
        cutoff = now - MINUTE
        while times and times[0] <= cutoff:
            times.popleft()
        if len(times) >= limit:
            retry = times[len(times) - limit] + MINUTE - now
            return False, LimitState(limit, 0, times[-1] + MINUTE - now), retry
        times.append(now)
        return True, LimitState(limit, limit - len(times), MINUTE), 0.0


class TokenWindow:
    """Tokens spent per bucket over a window; `used()` is the sum of the buckets still inside it."""

    __slots__ = ("buckets", "span", "total", "width")

    def __init__(self, window: float, width: float) -> None:
        self.width = width
        self.span = int(window // width)  # buckets per window
        self.buckets: dict[int, int] = {}  # bucket index -> tokens; insertion order is time order
        self.total = 0

    def add(self, tokens: int, at: float) -> None:
        index = int(at // self.width)
        self.buckets[index] = self.buckets.get(index, 0) + tokens
        self.total += tokens
        if len(self.buckets) > 1 and index < next(reversed(self.buckets)):
            self.buckets = dict(sorted(self.buckets.items()))  # a late spend: keep time order

    def used(self, now: float) -> int:
        oldest = int(now // self.width) - self.span + 1
        for index in list(self.buckets):
            if index >= oldest:
                break
            self.total -= self.buckets.pop(index)
        return self.total

    def state(self, limit: int, now: float) -> tuple[LimitState, float]:
        """(state, seconds until the spend is below the limit again; 0 when it is already)."""
        used = self.used(now)
        reset = (next(reversed(self.buckets)) + self.span) * self.width - now if self.buckets else 0.0
        retry = 0.0
        if used >= limit:
            left = used
            for index, tokens in self.buckets.items():
                left -= tokens
                if left < limit:
                    retry = (index + self.span) * self.width - now
                    break
        return LimitState(limit, max(0, limit - used), max(0.0, reset)), max(0.0, retry)


class KeyWindows:
    __slots__ = ("day", "minute", "requests")

    def __init__(self) -> None:
        self.requests = RequestLog()
        self.minute = TokenWindow(MINUTE, MINUTE_BUCKET)
        self.day = TokenWindow(DAY, DAY_BUCKET)


class LocalLimiter:
    """Windows per key name, in memory. `clock` is wall time so persisted token spend means the same
    after a restart."""

    __slots__ = ("_clock", "_windows", "budgets")

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, KeyWindows] = {}
        self.budgets = BudgetLedger()

    def admit(self, key: str, limits: KeyLimits, amount: int | None = None) -> Admission:
        """Check and count one request; with `amount` (its maximum cost) also check and hold it against
        the key's budgets. Refused on tokens or budgets, it takes no request slot; refused on requests,
        it holds nothing."""
        now = self._clock()
        windows = self._windows.get(key)
        if windows is None:
            windows = self._windows[key] = KeyWindows()
        exceeded: Exceeded | None = None
        retry = 0.0
        tokens: LimitState | None = None
        would_block: list[Exceeded] = []
        # Token windows first: refusing on tokens must not consume a request slot.
        checks: tuple[tuple[Exceeded, int | None, TokenWindow], ...] = (
            ("tokens_per_day", limits.tokens_per_day, windows.day),
            ("tokens_per_minute", limits.tokens_per_minute, windows.minute),
        )
        for name, limit, window in checks:
            if limit:
                state, wait = window.state(limit, now)
                tokens = state  # the minute window wins the headers when both are set
                if wait > 0 and name in limits.shadow:
                    would_block.append(name)
                elif wait > retry:
                    exceeded, retry = name, wait
        budget: BudgetVerdict | None = None
        if exceeded is None and amount is not None and limits.budgets:
            budget = self.budgets.check(key, limits.budgets, amount, now)
        refused = exceeded is not None or (budget is not None and budget.exceeded is not None)
        requests: LimitState | None = None
        if limits.requests_per_minute:
            if not refused:
                admitted, requests, wait = windows.requests.acquire(limits.requests_per_minute, now)
                if not admitted:
                    if "requests_per_minute" in limits.shadow:
                        would_block.append("requests_per_minute")  # admitted, not added to the log
                    else:
                        exceeded, retry = "requests_per_minute", wait
            else:
                requests = _peek(windows.requests, limits.requests_per_minute, now)
        if exceeded is not None:
            return Admission(False, requests, tokens, exceeded, retry)
        if budget is None:
            return Admission(True, requests, tokens, would_block=tuple(would_block))
        if budget.exceeded is not None:
            wait = max(0.0, budget.exceeded.resets_at - now)
            return Admission(False, requests, tokens, retry_after=wait, budget=budget)
        hold_id = self.budgets.hold(key, budget, now)
        shadowed = (*would_block, *budget.would_block)
        return Admission(True, requests, tokens, would_block=shadowed, budget=budget, hold_id=hold_id)

    def spend(self, key: str, tokens: int, at: float) -> None:
        windows = self._windows.get(key)
        if windows is None:
            windows = self._windows[key] = KeyWindows()
        windows.minute.add(tokens, at)
        windows.day.add(tokens, at)

    def load(self, spends: Iterable[tuple[str, float, int]]) -> None:
        """Restore per-day spend (key, bucket start time, tokens) read back after a restart. Only the
        day window: the stored buckets are coarser than the minute window."""
        for key, at, tokens in sorted(spends, key=lambda item: item[1]):
            windows = self._windows.get(key)
            if windows is None:
                windows = self._windows[key] = KeyWindows()
            windows.day.add(tokens, at)

    def keys(self) -> Iterator[str]:
        return iter(self._windows)


def _peek(log: RequestLog, limit: int, now: float) -> LimitState:
    """The request window's state without counting a request (the request was refused on tokens)."""
    live = [at for at in log.times if at > now - MINUTE]
    reset = live[-1] + MINUTE - now if live else 0.0
    return LimitState(limit, max(0, limit - len(live)), reset)
