"""The span exporter: a process of its own beside each gateway process, exporting that process's spans
with the official OpenTelemetry SDK and OTLP/HTTP exporter.

    python -m gateway.observe.span_export   # started by observe/span_pipe.py, its stdin the pipe

The gateway's request path only builds a tuple per span (`observe/span_wire.py`); here each becomes the
SDK's `ReadableSpan` (with the SDK's attribute limits, `OTEL_SPAN_ATTRIBUTE_*`) and goes to the exporters,
which read their own `OTEL_EXPORTER_OTLP_*` settings from the environment this process inherited. A batch
is exported before the next is read, so a slow collector pushes back through the pipe to the gateway's
bounded queue, where spans are dropped and counted, as the SDK's batch processor drops them.

The process ends when the pipe does (the gateway flushed and closed it, or exited): it exports what it
read, shuts the exporters down and exits. Ctrl-C, sent to the whole process group, is ignored here so that
the gateway's last spans are still exported after it.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from gateway import __version__
from gateway.observe.span_wire import FinishedSpan, derived_attributes, read_frame, span_name

logger = logging.getLogger("gateway.tracing")

SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def build_exporters(settings: Mapping[str, Any]) -> list[SpanExporter]:
    """The exporters the gateway's settings name (`otlp`, `console`), each reading OTEL_* itself."""
    exporters: list[SpanExporter] = []
    for name in settings["exporters"]:
        if name == "console":
            exporters.append(ConsoleSpanExporter(service_name=settings["service"], out=sys.stdout))
        else:
            exporters.append(OTLPSpanExporter(endpoint=settings.get("endpoint")))
    return exporters


class SpanBuilder:
    """Wire tuples -> the SDK's `ReadableSpan`, with one resource and scope for the process's spans."""

    __slots__ = ("limits", "resource", "scope")

    def __init__(self, service: str) -> None:
        # Resource.create adds OTEL_RESOURCE_ATTRIBUTES and the SDK's own attributes, as a TracerProvider's.
        self.resource = Resource.create({"service.name": service, "service.version": __version__})
        self.scope = InstrumentationScope("gateway", __version__)
        self.limits = SpanLimits()

    def span(self, item: Sequence[Any]) -> ReadableSpan:
        span = FinishedSpan(*item)
        state = TraceState.from_header([span.tracestate]) if span.tracestate else TraceState()
        context = SpanContext(span.trace_id, span.span_id, False, SAMPLED, state)
        parent = (
            SpanContext(span.trace_id, span.parent_span_id, span.parent_is_remote, SAMPLED, state)
            if span.parent_span_id
            else None
        )
        # None is "not set": the request path writes every attribute it knows and filters nothing.
        known = derived_attributes(span.kind, span.values)
        named = {**known, **span.extra_attributes} if span.extra_attributes else known
        limits = self.limits
        # The SDK's BoundedAttributes checks each value's type and applies the limits: 60% of a span's
        # build here. The request path writes only str, bool, int and float, so where no limit can bite
        # the plain dict is what it would give (and `dropped_attributes` is 0 either way).
        attributes: Mapping[str, Any] = named
        count_limit = limits.max_span_attributes  # None: no limit
        over_count = count_limit is not None and len(named) > count_limit
        if limits.max_span_attribute_length is not None or over_count:
            attributes = BoundedAttributes(
                limits.max_span_attributes,
                named,
                immutable=True,
                max_value_len=limits.max_span_attribute_length,
            )
        return ReadableSpan(
            name=span.name if span.name is not None else span_name(span.kind, known),
            context=context,
            parent=parent,
            resource=self.resource,
            attributes=attributes,
            kind=SpanKind(span.kind),
            status=Status(StatusCode(span.status_code), span.status_description),
            start_time=span.start_ns,
            end_time=span.end_ns,
            instrumentation_scope=self.scope,
        )


def export_all(stream: Any) -> None:
    """Read the settings, then export batch after batch until the stream ends."""
    settings = read_frame(stream)
    if not isinstance(settings, dict):
        return
    exporters = build_exporters(settings)
    builder = SpanBuilder(settings["service"])
    try:
        while (batch := read_frame(stream)) is not None:
            try:
                spans = [builder.span(item) for item in batch]
            except (KeyError, TypeError, ValueError):
                logger.exception("a batch of %d spans could not be read: dropped", len(batch))
                continue
            for exporter in exporters:
                try:
                    exporter.export(spans)
                except Exception:  # one exporter's failure must not stop the others or the next batch
                    logger.exception("the %s exporter failed", type(exporter).__name__)
    finally:
        for exporter in exporters:
            exporter.shutdown()


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    export_all(sys.stdin.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
