"""OpenTelemetry traces: whether they are on, and the tracer provider that exports them (OTLP over HTTP).

Off by default. On with `settings.tracing.enabled: true` or the standard `OTEL_TRACES_EXPORTER=otlp`;
whatever the config does not say comes from the standard `OTEL_*` variables, read by the SDK and its
exporter as usual (endpoint, headers, timeout, sampler, batch delays). The provider is the app's own, never
the process-global one, so two gateways in one process (tests) or a library's instrumentation do not mix.

When tracing is off no `Tracing` exists: `GatewayState.tracing` is None and a request pays one attribute
check (`api/admit.py`); the spans themselves are `observe/tracing_spans.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway import __version__
from gateway.config.tracing import TracingSettings
from gateway.observe.raw_headers import header_mapping, header_value
from gateway.observe.trace_sampling import SamplingRule, UnsampledTrace
from gateway.observe.tracing_spans import RequestTrace

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
    """The app's tracer provider; `request()` opens the span of one inbound request."""

    __slots__ = ("_propagator", "_tracer", "capture_content", "provider", "sampling")

    def __init__(
        self, provider: TracerProvider, *, capture_content: bool = False, sampling: SamplingRule | None = None
    ) -> None:
        self.provider = provider
        self.capture_content = capture_content
        self.sampling = sampling  # decided before the SDK (observe/trace_sampling.py); None: by the SDK
        self._tracer = provider.get_tracer("gateway", __version__)
        self._propagator = TraceContextTextMapPropagator()

    @classmethod
    def start(cls, settings: TracingSettings, environ: Mapping[str, str]) -> Tracing | None:
        """The tracing the settings and the environment ask for, or None when it is off."""
        names = exporters_from(settings, environ)
        if not names:
            return None
        service = settings.service_name or environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
        resource = Resource.create({"service.name": service, "service.version": __version__})
        sampling = SamplingRule.of(settings.sample_ratio, environ)
        # None: an unknown OTEL_TRACES_SAMPLER, read by the SDK itself
        sampler = sampling.sdk_sampler() if sampling is not None else None
        provider = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
        for name in names:
            exporter: SpanExporter
            if name == "console":
                exporter = ConsoleSpanExporter(service_name=service)
            else:
                endpoint = traces_endpoint(settings.endpoint) if settings.endpoint else None
                exporter = OTLPSpanExporter(endpoint=endpoint)
            provider.add_span_processor(BatchSpanProcessor(exporter))  # delays: OTEL_BSP_*
        logger.info(
            "tracing on: exporter %s, service.name %s, prompts and answers %s",
            ", ".join(names),
            service,
            "captured" if settings.capture_content else "not captured",
        )
        return cls(provider, capture_content=settings.capture_content, sampling=sampling)

    def request(
        self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]], request_id: str
    ) -> RequestTrace | UnsampledTrace:
        """The SERVER span of a request that just arrived (`headers`: the ASGI scope's), continuing the
        client's `traceparent`; an `UnsampledTrace` (no span at all) when the request is not sampled."""
        traceparent = header_value(headers, b"traceparent")
        if self.sampling is not None:
            sampled, client_parent = self.sampling.decide(traceparent)
            if not sampled:
                tracestate = header_value(headers, b"tracestate") if client_parent is not None else None
                return UnsampledTrace(client_parent, tracestate)
        parent = self._propagator.extract(header_mapping(headers)) if traceparent is not None else None
        return RequestTrace(
            self._tracer, self._propagator, parent, method, path, request_id, self.capture_content
        )

    def shutdown(self) -> None:
        """Export what is still buffered, then stop the export threads (blocking: call it off the loop)."""
        self.provider.shutdown()
