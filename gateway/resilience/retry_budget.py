"""The retry budget of one provider: a failing provider is never hammered by a retry storm.

Two bounds, both from Envoy (`retry_budget`: budget_percent 20, min_retry_concurrency 3) and Finagle
(`RetryBudget`: a share of recent requests plus a small reserve):

- retries in flight (granted, waiting out their backoff or sent) stay within max(20% of the requests in
  flight to the provider, 3);
- retries over the last minute stay within 20% of the first attempts over that minute, plus 3.

So over any minute a provider sees at most 1.2 x the requests sent to it, plus 3. A retry the budget
refuses is not lost: the request fails over to the route's next target, as when its attempts run out.
The cost on the happy path: two counter updates per attempt, one per first attempt into a ring slot.
"""

from __future__ import annotations

PERCENT = 0.2  # of requests: the retries they may add
MIN_RETRIES = 3  # the floor of both bounds: a provider with little traffic may still be retried
WINDOW = 60  # seconds of history of the second bound, in one-second slots


class RetryBudget:
    __slots__ = ("_first", "_first_total", "_latest", "_retries", "_retries_total", "in_flight", "retrying")

    def __init__(self) -> None:
        self.in_flight = 0  # attempts (first ones and retries) waiting for the provider's answer
        self.retrying = 0  # retries granted and not yet ended
        self._first = [0] * WINDOW  # first attempts per second of the window (ring)
        self._retries = [0] * WINDOW  # retries granted per second of the window (ring)
        self._latest = 0  # the newest second the ring holds
        self._first_total = 0
        self._retries_total = 0

    def _slot(self, now: float) -> int:
        """The ring slot of second `now`; the seconds since the newest one are emptied first (with the
        totals), so the totals always cover the last WINDOW seconds."""
        second = int(now)
        latest = self._latest
        if second > latest:
            if second - latest >= WINDOW:
                self._first = [0] * WINDOW
                self._retries = [0] * WINDOW
                self._first_total = self._retries_total = 0
            else:
                for passed in range(latest + 1, second + 1):
                    slot = passed % WINDOW
                    self._first_total -= self._first[slot]
                    self._retries_total -= self._retries[slot]
                    self._first[slot] = self._retries[slot] = 0
            self._latest = second
        return second % WINDOW

    def first_attempt(self, now: float) -> None:
        self._first[self._slot(now)] += 1
        self._first_total += 1

    def allows_retry(self, now: float) -> bool:
        """Take a retry from the budget (then `retry_ended` must follow), or False when spent."""
        if self.retrying >= max(PERCENT * self.in_flight, MIN_RETRIES):
            return False
        slot = self._slot(now)
        if self._retries_total >= PERCENT * self._first_total + MIN_RETRIES:
            return False
        self._retries[slot] += 1
        self._retries_total += 1
        self.retrying += 1
        return True

    def retry_ended(self) -> None:
        self.retrying -= 1

    def state(self) -> dict[str, int]:
        """For `/health`."""
        return {
            "in_flight": self.in_flight,
            "retries_in_flight": self.retrying,
            "requests_last_minute": self._first_total,
            "retries_last_minute": self._retries_total,
        }
