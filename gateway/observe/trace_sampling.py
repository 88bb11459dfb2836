"""Whether a request is traced, decided before any span exists.

The decision is a parse of the client's `traceparent` and a random draw, with the SDK's own semantics for
the standard samplers (`OTEL_TRACES_SAMPLER`: `always_on`, `always_off`, `traceidratio`, `parentbased_*`;
`settings.tracing.sample_ratio` is `parentbased_traceidratio`). A sampled request records its spans
(`observe/tracing_spans.py`); an unsampled one only carries a `traceparent` upstream with the sampled flag
off, so the trace goes on unrecorded (W3C Trace Context). A sampler the gateway does not know (a plugin)
is asked through the SDK's sampler interface instead (`observe/tracing.py`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.streaming.stats import StreamStats

# The W3C header as the SDK's propagator reads it (version 00 has no further fields).
TRACEPARENT = re.compile(r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?[ \t]*$")
INVALID_TRACE_ID = "0" * 32
# A client's valid traceparent: (trace id, parent span id, flags), in lower-case hex as sent.
ClientParent = tuple[str, str, str]
INVALID_SPAN_ID = "0" * 16
# OTEL_TRACES_SAMPLER name -> (parent based, ratio from OTEL_TRACES_SAMPLER_ARG, fixed ratio)
KNOWN_SAMPLERS: Mapping[str, tuple[bool, bool, float]] = {
    "always_on": (False, False, 1.0),
    "always_off": (False, False, 0.0),
    "traceidratio": (False, True, 1.0),
    "parentbased_always_on": (True, False, 1.0),
    "parentbased_always_off": (True, False, 0.0),
    "parentbased_traceidratio": (True, True, 1.0),
}


@dataclass(frozen=True, slots=True)
class SamplingRule:
    """A standard sampler: follow a remote parent's sampled flag (`parent_based`) or not; sample a root
    trace with probability `ratio`."""

    parent_based: bool
    ratio: float

    @classmethod
    def of(cls, sample_ratio: float | None, environ: Mapping[str, str]) -> SamplingRule | None:
        """The rule of the config's `sample_ratio`, else of OTEL_TRACES_SAMPLER(_ARG) (default
        `parentbased_always_on`, as the SDK's); None for a sampler this module does not know."""
        if sample_ratio is not None:
            return cls(True, sample_ratio)
        name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
        known = KNOWN_SAMPLERS.get(name)
        if known is None:
            return None
        parent_based, from_argument, ratio = known
        if from_argument:
            try:
                ratio = float(environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
            except ValueError:
                ratio = 1.0  # the SDK's fallback for an unreadable argument
            if not 0.0 <= ratio <= 1.0:
                ratio = 1.0
        return cls(parent_based, ratio)

    def decide(self, traceparent: str | None) -> tuple[bool, ClientParent | None]:
        """(sampled, the client's valid traceparent or None)."""
        parent = parse_traceparent(traceparent) if traceparent else None
        if parent is not None and self.parent_based:
            return (int(parent[2], 16) & 1) == 1, parent
        return random.random() < self.ratio, parent


def parse_traceparent(value: str) -> ClientParent | None:
    """(trace id, parent span id, flags) of a valid `traceparent`, else None (a new trace starts, as the
    SDK's propagator would)."""
    found = TRACEPARENT.match(value)
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    if (
        version == "ff"
        or (version == "00" and rest)
        or trace_id == INVALID_TRACE_ID
        or span_id == INVALID_SPAN_ID
    ):
        return None
    return trace_id, span_id, flags


class UnsampledTrace:
    """An unrecorded request: its attempts send `traceparent` (the client's trace, or a new one) with the
    sampled flag off, and the client's `tracestate`; nothing else is done or kept."""

    __slots__ = ("trace_id", "tracestate")
    recording = False

    def __init__(self, parent: ClientParent | None, tracestate: str | None) -> None:
        self.trace_id = parent[0] if parent is not None else (random.getrandbits(128) or 1).to_bytes(16).hex()
        self.tracestate = tracestate if parent is not None else None

    def attempt(
        self, number: int, provider: str, provider_type: str, model: str, url: str
    ) -> tuple[tuple[str, str], ...]:
        span_id = (random.getrandbits(64) or 1).to_bytes(8).hex()
        traceparent = ("traceparent", f"00-{self.trace_id}-{span_id}-00")
        tracestate = self.tracestate
        return (traceparent, ("tracestate", tracestate)) if tracestate else (traceparent,)

    def completed(self, answer: Any, usage: dict[str, Any] | None) -> None:
        pass

    def failed(self, error: BaseException) -> None:
        pass

    def stream_finished(self, stats: StreamStats) -> None:
        pass
