"""OpenTelemetry traces: whether they are on, and where their spans go (OTLP over HTTP).

Off by default. On with `settings.tracing.enabled: true` or the standard `OTEL_TRACES_EXPORTER=otlp`;
whatever the config does not say comes from the standard `OTEL_*` variables, read as the SDK and its
exporter read them (endpoint, headers, timeout, sampler, batch delays, resource attributes).

A traced request builds its spans as plain values, one tuple per request (`observe/tracing_spans.py`),
queued for an exporter process of its own (`observe/span_pipe.py`), where the official SDK and OTLP
exporter turn them into protobuf and send them (`observe/span_export.py`). In the gateway's process the
SDK's spans and encoder would cost about 150 us of CPU per traced request, more than the request itself;
the tuple costs a few. Nothing of this is process-global, so two gateways in one process (tests) or a
library's instrumentation do not mix.

When tracing is off no `Tracing` exists: `GatewayState.tracing` is None and a request pays one attribute
check (`api/admit.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from random import getrandbits, random
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.config.tracing import TracingSettings
from gateway.observe.raw_headers import header_mapping, header_value
from gateway.observe.span_pipe import SpanPipe
from gateway.observe.trace_sampling import ClientParent, SamplingRule, UnsampledTrace, parse_traceparent
from gateway.observe.tracing_spans import RequestTrace, SpanSink, new_trace_id

logger = logging.getLogger("gateway.tracing")

DEFAULT_SERVICE_NAME = "gateway"
TRACES_PATH = "/v1/traces"
# Values of OTEL_TRACES_EXPORTER the gateway ships an exporter for.
KNOWN_EXPORTERS = ("otlp", "console", "none")


def exporters_from(settings: TracingSettings, environ: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters to use, by their OTEL_TRACES_EXPORTER names; () when tracing is off."""
    named = [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    named = [name for name in named if name]
    for name in named:
        if name not in KNOWN_EXPORTERS:
            logger.warning("OTEL_TRACES_EXPORTER names %r, which the gateway does not ship: ignored", name)
    chosen = tuple(name for name in named if name in ("otlp", "console"))
    if settings.enabled is not None:
        return (chosen or ("otlp",)) if settings.enabled else ()
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ()
    return chosen


def traces_endpoint(endpoint: str) -> str:
    """`endpoint` as written, with /v1/traces added to a bare origin (http://collector:4318)."""
    return endpoint.rstrip("/") + TRACES_PATH if urlsplit(endpoint).path in ("", "/") else endpoint


class Tracing:
    """Where traced requests' spans go; `request()` opens the span of one inbound request."""

    __slots__ = ("capture_content", "plugin_sampler", "sample_every_root", "sampling", "sink")

    def __init__(
        self,
        sink: SpanSink,
        *,
        capture_content: bool = False,
        sampling: SamplingRule | None = None,
        plugin_sampler: Sampler | None = None,
    ) -> None:
        self.sink = sink
        self.capture_content = capture_content
        # The decision: a standard sampler's rule (observe/trace_sampling.py), else the SDK's sampler
        # named by OTEL_TRACES_SAMPLER (a plugin), asked for each request.
        self.sampling = sampling
        self.plugin_sampler = plugin_sampler
        self.sample_every_root = sampling is not None and sampling.ratio >= 1.0

    @classmethod
    def start(cls, settings: TracingSettings, environ: Mapping[str, str]) -> Tracing | None:
        """The tracing the settings and the environment ask for, or None when it is off."""
        names = exporters_from(settings, environ)
        if not names:
            return None
        service = settings.service_name or environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
        sampling = SamplingRule.of(settings.sample_ratio, environ)
        # An unknown OTEL_TRACES_SAMPLER: the SDK loads it as a TracerProvider would.
        plugin = TracerProvider(shutdown_on_exit=False).sampler if sampling is None else None
        endpoint = traces_endpoint(settings.endpoint) if settings.endpoint else None
        pipe = SpanPipe({"exporters": list(names), "endpoint": endpoint, "service": service}, environ)
        logger.info(
            "tracing on: exporter %s, service.name %s, prompts and answers %s",
            ", ".join(names),
            service,
            "captured" if settings.capture_content else "not captured",
        )
        return cls(pipe, capture_content=settings.capture_content, sampling=sampling, plugin_sampler=plugin)

    def request(
        self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]]
    ) -> RequestTrace | UnsampledTrace:
        """The spans of a request that just arrived (`headers`: the ASGI scope's), continuing the client's
        `traceparent`; an `UnsampledTrace` (no span at all) when the request is not sampled."""
        traceparent = None
        for name, value in headers:  # inline, not header_value(): this runs for every request
            if name == b"traceparent":
                traceparent = value.decode("latin-1")
                break
        sampling = self.sampling
        if traceparent is None and sampling is not None:  # a root, by a standard sampler: its rule inline
            if not (self.sample_every_root or random() < sampling.ratio):
                return UnsampledTrace(None, None)
            trace_id = (getrandbits(128) or 1).to_bytes(16).hex()  # new_trace_id(), inline: a call costs
            return RequestTrace(self.sink, trace_id, "", None, method, path, self.capture_content)
        trace_id = ""
        if sampling is not None:
            sampled, parent = sampling.decide(traceparent)
        else:
            sampled, parent, trace_id = self._ask_plugin(method, path, headers, traceparent)
        tracestate = header_value(headers, b"tracestate") if parent is not None else None
        if not sampled:
            return UnsampledTrace(parent, tracestate)
        if parent is not None:
            trace_id, parent_span_id = parent[0], parent[1]
        else:
            trace_id, parent_span_id = trace_id or new_trace_id(), ""
        capture = self.capture_content
        return RequestTrace(self.sink, trace_id, parent_span_id, tracestate, method, path, capture)

    def _ask_plugin(
        self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]], traceparent: str | None
    ) -> tuple[bool, ClientParent | None, str]:
        """(sampled, the client's parent, the trace id of a new root, in hex) from the SDK's sampler."""
        assert self.plugin_sampler is not None
        parent = parse_traceparent(traceparent) if traceparent else None
        context = TraceContextTextMapPropagator().extract(header_mapping(headers)) if parent else None
        trace_id = parent[0] if parent is not None else new_trace_id()
        result = self.plugin_sampler.should_sample(
            context, int(trace_id, 16), f"{method} {path}", SpanKind.SERVER
        )
        return result.decision is Decision.RECORD_AND_SAMPLE, parent, trace_id

    def shutdown(self) -> None:
        """Export what is still queued, then stop (blocking: call it off the event loop)."""
        self.sink.shutdown()
