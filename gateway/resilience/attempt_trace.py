"""The seam through which the attempt loop reports each upstream attempt to a tracer (observe/tracing.py).

Resilience does not import observe: the request's tracer comes in on `RequestContext.trace` as anything
with these methods, and is None when tracing is off (the loop then checks one attribute per attempt).
"""

from __future__ import annotations

from typing import Any, Protocol

from gateway.streaming.stats import StreamStats


class AttemptSpan(Protocol):
    """One upstream attempt, from before its request is built to its answer (a stream: to its end)."""

    # Headers that carry this attempt's span context upstream (`traceparent`, maybe `tracestate`).
    headers: tuple[tuple[str, str], ...]
    # False for an unsampled request's attempt: then only `headers` matter (no answer is read for it).
    recording: bool

    def completed(self, answer: Any, usage: dict[str, Any] | None) -> None:
        """A whole answer arrived: `answer` is the upstream's JSON, parsed (None: it was not JSON)."""

    def failed(self, error: BaseException) -> None:
        """The attempt failed or was cancelled before an answer (or before a stream's first event)."""

    def stream_finished(self, stats: StreamStats) -> None:
        """A relayed stream ended, however (a finish callback of the relay)."""


class AttemptTracer(Protocol):
    """Starts the span of each attempt of one request, as a child of the request's span."""

    def attempt(self, number: int, provider: str, provider_type: str, model: str, url: str) -> AttemptSpan:
        """`number` counts from 1 over the request; `url` is the provider's base URL."""
