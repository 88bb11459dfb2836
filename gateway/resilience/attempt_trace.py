"""The seam through which the attempt loop reports each upstream attempt to a tracer (observe/tracing.py).

Resilience does not import observe: the request's tracer comes in on `RequestContext.trace` as anything
with these methods, and is None when tracing is off (the loop then checks one attribute per attempt). A
request's attempts run one after another, so the tracer keeps the current one: no object per attempt.
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.streaming.stats import StreamStats


class AttemptTracer(Protocol):
    """Starts and ends the span of each attempt of one request, as a child of the request's span."""

    # False for an unsampled request: then only `attempt`'s headers matter (no answer is read for it).
    recording: bool

    def attempt(
        self, number: int, provider: str, provider_type: str, model: str, url: str
    ) -> tuple[tuple[str, str], ...]:
        """Start attempt `number` (from 1 over the request; `url`: the provider's base URL), before its
        request is built; returns the headers that carry its span context upstream (`traceparent`, maybe
        `tracestate`)."""

    def completed(self, answer: Any, usage: dict[str, Any] | None) -> None:
        """A whole answer arrived: `answer` is the upstream's JSON, parsed (None: it was not JSON)."""

    def failed(self, error: BaseException) -> None:
        """The attempt failed or was cancelled before an answer (or before a stream's first event)."""

    def stream_finished(self, stats: StreamStats) -> None:
        """The attempt's relayed stream ended, however (a finish callback of the relay)."""
