"""What the gateway knows about each provider's health: active check results, the circuit breaker, latency.

One `ProviderHealth` per `Provider` object. `HealthRegistry.build(registry, previous)` keeps the state of
every provider a reload kept (same object: its definition did not change) and starts fresh for new or
changed ones, exactly as `ProviderRegistry.build` keeps pools; the retired states are returned so the
health checker can stop probing them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.errors import GatewayError, UpstreamCapacity, UpstreamError, UpstreamStatusError
from gateway.providers.base import Provider
from gateway.providers.registry import ProviderRegistry
from gateway.resilience.breaker import Breaker
from gateway.resilience.retry_budget import RetryBudget
from gateway.streaming.stats import StreamStats

HealthState = Literal["healthy", "unknown", "unhealthy", "unavailable"]
CheckStatus = Literal["unknown", "healthy", "unhealthy"]

# Weight of the newest sample in the latency moving average (least_latency strategy).
LATENCY_SMOOTHING = 0.3
# The latency sample a failed attempt adds (seconds, at least): failing is slower than any real answer.
FAILURE_LATENCY = 10.0


def counts_against_provider(exc: GatewayError) -> bool:
    """Whether a failed attempt says the provider is in trouble (opens the breaker): transport failures
    and 5xx do; 4xx (the request's fault, or a rate limit) do not."""
    if isinstance(exc, UpstreamStatusError):
        return exc.status_code >= 500
    return True


class ProviderHealth:
    __slots__ = (
        "breaker",
        "check_error",
        "check_failures",
        "check_latency",
        "check_status",
        "check_successes",
        "checked_at",
        "latency",
        "name",
        "provider",
        "retry_budget",
    )

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.name = provider.name
        self.breaker = Breaker(provider.config.circuit_breaker)
        self.check_status: CheckStatus = "unknown"  # unknown counts as healthy until a check says otherwise
        self.check_failures = 0
        self.check_successes = 0
        self.check_error: str | None = None
        self.checked_at: float | None = None  # wall clock (time.time) of the last check
        self.check_latency: float | None = None  # seconds the last check took
        self.latency: float | None = None  # moving average of successful attempts, seconds
        self.retry_budget = RetryBudget()

    # Routing asks these (hot path: attribute reads only).

    def usable(self, now: float) -> bool:
        """Would routing send a request here now (outside panic mode)?"""
        return self.check_status != "unhealthy" and self.breaker.allows(now)

    def routable(self, now: float) -> bool:
        """Configured usable and currently usable: what /health counts as able to serve."""
        return self.provider.available and self.usable(now)

    def acquire(self, now: float) -> bool:
        """Take a slot for one attempt: False while actively unhealthy or while the breaker holds it back."""
        return self.check_status != "unhealthy" and self.breaker.acquire(now)

    # Outcomes of real requests.

    def record_success(self, elapsed: float) -> None:
        self.breaker.record_success()
        previous = self.latency
        self.latency = elapsed if previous is None else previous + LATENCY_SMOOTHING * (elapsed - previous)

    def record_error(self, exc: GatewayError, now: float, elapsed: float) -> None:
        if isinstance(exc, UpstreamCapacity):
            return  # our own limit: nothing was asked of the provider
        if counts_against_provider(exc):
            self.breaker.record_failure(now, exc.message)
            # A failure counts as a slow answer, so least_latency steers away before the breaker opens.
            sample = max(elapsed, FAILURE_LATENCY)
            previous = self.latency
            self.latency = sample if previous is None else previous + LATENCY_SMOOTHING * (sample - previous)
        elif exc.status_code != 429:  # rate limited: no verdict on the provider's health
            self.breaker.record_success()  # it answered: the request was at fault, not the provider

    def record_stream_start(self, elapsed: float) -> None:
        """A stream's first event arrived: its latency counts now, its verdict when it ends."""
        previous = self.latency
        self.latency = elapsed if previous is None else previous + LATENCY_SMOOTHING * (elapsed - previous)

    def stream_finished(self, stats: StreamStats) -> None:
        """A stream's finish callback, the breaker's verdict on it: a stream cut mid-way by the upstream
        (dropped, timed out, malformed) is a failure, a complete one a success; a client that left says
        nothing of the provider."""
        failure = stats.failure
        if isinstance(failure, UpstreamError):
            self.record_error(failure, time.monotonic(), time.perf_counter() - stats.started)
        elif stats.status == "ok":
            self.breaker.record_success()
        else:
            self.breaker.release()

    def release(self) -> None:
        self.breaker.release()

    # Outcomes of active checks.

    def record_check(self, ok: bool, latency: float, error: str | None, threshold: tuple[int, int]) -> None:
        """One probe result; `threshold` is (healthy_threshold, unhealthy_threshold)."""
        healthy_after, unhealthy_after = threshold
        self.checked_at = time.time()
        self.check_latency = latency
        self.check_error = error
        if ok:
            self.check_successes += 1
            self.check_failures = 0
            if self.check_status != "unhealthy" or self.check_successes >= healthy_after:
                self.check_status = "healthy"
        else:
            self.check_failures += 1
            self.check_successes = 0
            if self.check_failures >= unhealthy_after:
                self.check_status = "unhealthy"

    # Reporting (/health).

    def state(self, now: float) -> tuple[HealthState, str | None]:
        """The provider's state for /health and why: `unknown` until the active checks give a verdict
        (routing still uses it, so /health counts it as able to serve)."""
        provider = self.provider
        if not provider.available:
            return "unavailable", provider.unavailable_reason
        if self.check_status == "unhealthy":
            failed = self.check_failures
            return "unhealthy", f"health check failed {failed} times in a row: {self.check_error}"
        breaker = self.breaker
        if breaker.state == "open" and not breaker.allows(now):
            return "unhealthy", (
                f"circuit open after {breaker.failures} consecutive failures "
                f"(last: {breaker.last_error}); next trial in {breaker.retry_in(now) or 0:.1f}s"
            )
        if breaker.state != "closed":
            return "healthy", "circuit half-open: the next request is a trial"
        if self.check_status == "unknown" and provider.config.health_check.enabled:
            # Routable (a route of unknown targets is servable), but no check has said so yet.
            failed = self.check_failures
            if failed:
                return "unknown", f"health check failed {failed} times so far: {self.check_error}"
            return "unknown", "no health check has answered yet"
        return "healthy", None

    def snapshot(self, now: float) -> dict[str, Any]:
        state, reason = self.state(now)
        check = self.provider.config.health_check
        breaker = self.breaker
        return {
            "type": self.provider.config.type,
            "state": state,
            "reason": reason,
            "health_check": {
                "enabled": check.enabled and self.provider.available,
                "status": self.check_status,
                "last_check": _iso(self.checked_at),
                "latency_ms": _ms(self.check_latency),
                "consecutive_failures": self.check_failures,
                "consecutive_successes": self.check_successes,
                "error": self.check_error,
            },
            "circuit_breaker": {
                "state": breaker.state,
                "consecutive_failures": breaker.failures,
                "failure_threshold": breaker.threshold,
                "retry_in": None if (wait := breaker.retry_in(now)) is None else round(wait, 3),
                "last_error": breaker.last_error,
            },
            "latency_ms": _ms(self.latency),
            "pool": _pool(self.provider),
            "retry_budget": self.retry_budget.state(),
        }


class HealthRegistry:
    """The `ProviderHealth` of every provider of one `ProviderRegistry`, by provider name."""

    __slots__ = ("_by_name",)

    def __init__(self, states: dict[str, ProviderHealth]) -> None:
        self._by_name = states

    @classmethod
    def build(
        cls, registry: ProviderRegistry, previous: HealthRegistry | None = None
    ) -> tuple[HealthRegistry, list[ProviderHealth]]:
        """States for `registry`, keeping those of `previous` whose provider object is unchanged; returns
        the registry and the previous states no longer used."""
        old = previous._by_name if previous is not None else {}
        states: dict[str, ProviderHealth] = {}
        for provider in registry:
            kept = old.get(provider.name)
            states[provider.name] = kept if kept is not None and kept.provider is provider else (
                ProviderHealth(provider)
            )  # fmt: skip
        retired = [state for name, state in old.items() if states.get(name) is not state]
        return cls(states), retired

    def get(self, name: str) -> ProviderHealth | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[ProviderHealth]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _pool(provider: Provider) -> dict[str, int | None]:
    """Upstream connections in use and idle, requests waiting for one (or for a concurrency slot), and,
    with `max_concurrent_requests`, requests in flight against that cap."""
    pool = provider.pool_state()
    state: dict[str, int | None] = {"in_use": pool.in_use, "idle": pool.idle, "waiting": pool.waiting}
    if provider.in_flight is not None:
        state["in_flight"] = provider.in_flight
        state["max_concurrent_requests"] = provider.config.pool.max_concurrent_requests
    return state
