"""A route's retry policy compiled for the attempt loop: which failures retry, and how long to wait.

`RetryPolicy` (config) is what the user wrote; `RetryRules` is the same thing in the shape the hot path
wants: a frozenset to test failure kinds against, the backoff numbers, and a random source tests can seed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from time import time

from gateway.config.models import RetryPolicy
from gateway.errors import UpstreamCapacity, UpstreamError


@dataclass(frozen=True, slots=True)
class RetryRules:
    attempts: int  # per target, the first included
    retry_on: frozenset[str]  # "503", "connect_error", "timeout", "read_error", ...
    base: float
    max_wait: float
    jitter: bool
    retry_after_cap: float
    rng: random.Random = field(default_factory=random.Random, compare=False)

    @classmethod
    def from_policy(cls, policy: RetryPolicy, rng: random.Random | None = None) -> RetryRules:
        kinds = {str(condition) for condition in policy.retry_on}
        if "read_error" in kinds:
            # An answer that broke off unreadably (closed before its first event, garbled) is the same
            # failure seen from the reading side.
            kinds.add("protocol_error")
        return cls(
            attempts=max(1, policy.attempts),
            retry_on=frozenset(kinds),
            base=policy.backoff.base,
            max_wait=policy.backoff.max,
            jitter=policy.backoff.jitter,
            retry_after_cap=policy.retry_after_cap,
            rng=rng or random.Random(),
        )

    def retries(self, exc: UpstreamError) -> bool:
        """Whether this failure may be retried and failed over. A 4xx other than 429 never is: it is the
        request's fault and no attempt elsewhere would change it."""
        status = exc.status_code
        if 400 <= status < 500 and status != 429:
            return False
        # The gateway's own capacity limit: nothing was sent, so another target is always worth a try;
        # a target's own misconfiguration (redirect, refused credentials) likewise (the loop fails over
        # without retrying it).
        return (
            exc.retryable_kind in self.retry_on
            or exc.target_misconfigured
            or isinstance(exc, UpstreamCapacity)
        )

    def backoff(self, retry: int) -> float:
        """Seconds before retry number `retry` (1 = the first retry): `base * 2**(retry-1)` capped at
        `max_wait`, and with full jitter a uniform draw in [0, that]."""
        ceiling = min(self.max_wait, self.base * (2 ** (retry - 1)))
        return self.rng.uniform(0.0, ceiling) if self.jitter else ceiling

    def wait_before(self, retry: int, exc: UpstreamError) -> float | None:
        """Seconds to wait before retrying after `exc`; None when the provider asked for a longer pause
        (retry-after-ms or Retry-After) than `retry_after_cap` allows, so the loop fails over instead."""
        asked = asked_wait(exc.headers)
        if asked is not None:
            return asked if asked <= self.retry_after_cap else None
        return self.backoff(retry)


def asked_wait(headers: Mapping[str, str]) -> float | None:
    """The pause the provider asked for, in seconds: `retry-after-ms` (milliseconds, OpenAI's and
    Azure's) takes precedence over `Retry-After`, as the OpenAI SDK reads them; None if neither is
    readable. Header names are lower-case."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        asked = parse_retry_after_ms(milliseconds)
        if asked is not None:
            return asked
    header = headers.get("retry-after")
    return parse_retry_after(header) if header is not None else None


def parse_retry_after_ms(value: str) -> float | None:
    """`retry-after-ms` in seconds; None when it is not a finite, non-negative number."""
    try:
        milliseconds = float(value.strip())
    except ValueError:
        return None
    if not (0.0 <= milliseconds < float("inf")):  # NaN and negatives fail too
        return None
    return milliseconds / 1000.0


def parse_retry_after(value: str) -> float | None:
    """Retry-After in seconds from now: delta-seconds or an HTTP date (RFC 9110); None if unreadable."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - time()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
