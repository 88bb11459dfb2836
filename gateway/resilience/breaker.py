"""Passive health: a circuit breaker per provider, fed by the outcome of real requests.

    closed ──N consecutive failures──> open ──cooldown elapsed──> half-open ──trial succeeds──> closed
                                        ^                             │
                                        └──────trial fails────────────┘

While open the provider is skipped; once the cooldown has elapsed one request (the trial) is let through,
and every other request keeps skipping it until the trial has reported. Times are `time.monotonic()`
seconds, passed in so tests can drive the clock.
"""

from __future__ import annotations

from typing import Literal

from gateway.config.models import CircuitBreaker

BreakerState = Literal["closed", "open", "half_open"]


class Breaker:
    __slots__ = ("cooldown", "failures", "last_error", "opened_at", "state", "threshold", "trial_in_flight")

    def __init__(self, config: CircuitBreaker) -> None:
        self.threshold = config.failure_threshold
        self.cooldown = config.cooldown
        self.state: BreakerState = "closed"
        self.failures = 0  # consecutive failed requests
        self.opened_at = 0.0
        self.trial_in_flight = False
        self.last_error: str | None = None

    def allows(self, now: float) -> bool:
        """Would a request be let through now? No side effect (routing and /health ask this)."""
        if self.state == "closed":
            return True
        if self.state == "open":
            return now - self.opened_at >= self.cooldown
        return not self.trial_in_flight

    def acquire(self, now: float) -> bool:
        """Let one request through if the breaker allows it; past the cooldown that request is the trial."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if now - self.opened_at < self.cooldown:
                return False
            self.state = "half_open"
        if self.trial_in_flight:
            return False
        self.trial_in_flight = True
        return True

    def record_success(self) -> None:
        if self.state == "closed":
            self.failures = 0  # a plain store: the happy path costs next to nothing
            return
        self.state = "closed"
        self.failures = 0
        self.trial_in_flight = False

    def record_failure(self, now: float, error: str) -> None:
        self.failures += 1
        self.last_error = error
        if self.state != "closed" or self.failures >= self.threshold:
            # A failed trial (or a failure while open, e.g. in panic mode) restarts the cooldown.
            self.state = "open"
            self.opened_at = now
            self.trial_in_flight = False

    def release(self) -> None:
        """The trial ended without a verdict (cancelled, rate limited): free the slot for another request."""
        self.trial_in_flight = False

    def retry_in(self, now: float) -> float | None:
        """Seconds until an open breaker lets a trial through; None unless open."""
        if self.state != "open":
            return None
        return max(0.0, self.cooldown - (now - self.opened_at))
