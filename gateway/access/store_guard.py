"""What the gateway does while its usage store cannot answer: the declared failure mode, and the state
`/health` and `/metrics` show.

`fail_closed` (the default): a request of a key with limits is answered 503 `store_unavailable` at once,
so no limit is silently switched off. `fail_open`: it is admitted without limits. Either way the outage is
logged (once a minute), counted, and the store is not asked again for `RETRY_INTERVAL` after a failure, so
every request during an outage costs one clock read, not a connect attempt; the first one after that asks
again, and an answer ends the outage.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from gateway.errors import LimitsUnavailable

logger = logging.getLogger("gateway.access")

FailureMode = Literal["fail_closed", "fail_open"]
RETRY_INTERVAL = 0.5  # seconds between two attempts to reach a store that failed
LOG_INTERVAL = 60.0  # seconds between two "store unavailable" log lines


class StoreGuard:
    """The store's availability as requests found it."""

    __slots__ = ("_logged_at", "_retry_at", "description", "down_since", "last_error", "mode", "unavailable")

    def __init__(self, description: str, mode: FailureMode) -> None:
        self.description = description
        self.mode = mode
        self.down_since: float | None = None  # time.time() of the first failure of this outage
        self.last_error = ""
        self.unavailable = 0  # requests that found the store unavailable, since start
        self._retry_at = 0.0
        self._logged_at = -LOG_INTERVAL

    def resting(self) -> bool:
        """True while a recent failure says not to ask the store yet."""
        return self.down_since is not None and time.monotonic() < self._retry_at

    def answered(self) -> None:
        if self.down_since is not None:
            logger.warning(
                "usage store %s is back after %.1fs; limits apply again",
                self.description,
                time.time() - self.down_since,
            )
            self.down_since = None

    def failed(self, error: str) -> None:
        now = time.monotonic()
        self._retry_at = now + RETRY_INTERVAL
        self.last_error = error
        if self.down_since is None:
            self.down_since = time.time()

    def without_store(self) -> None:
        """A request the store could not answer: admitted (fail_open) or refused here (fail_closed)."""
        self.unavailable += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            what = (
                "admitting requests without limits"
                if self.mode == "fail_open"
                else "refusing requests with limits (503)"
            )
            logger.error(
                "usage store %s unavailable (%s): %s until it is back (store_failure_mode %s)",
                self.description,
                self.last_error,
                what,
                self.mode,
            )
        if self.mode == "fail_closed":
            raise LimitsUnavailable(
                "The gateway cannot check this key's limits: its usage store is unavailable. Retry shortly.",
                code="store_unavailable",
                headers={"retry-after": "1"},
            )

    def state(self) -> dict[str, object]:
        """For `/health`."""
        down = self.down_since
        return {
            "store": self.description,
            "state": "ok" if down is None else "unavailable",
            "failure_mode": self.mode,
            "unavailable_since": None if down is None else round(down, 3),
            "requests_without_store": self.unavailable,
        }
