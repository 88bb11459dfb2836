"""The span exporter: a process of its own beside each gateway process, exporting that process's spans
with the official OpenTelemetry SDK and OTLP/HTTP exporter.

    python -m gateway.observe.span_export   # started by observe/span_pipe.py, its stdin the pipe

The gateway's request path only builds a tuple per traced request (`observe/span_wire.py`); here its spans
become the SDK's `ReadableSpan`s (with the SDK's attribute limits, `OTEL_SPAN_ATTRIBUTE_*`) and go to the
exporters, which read their own `OTEL_EXPORTER_OTLP_*` settings from the environment this process
inherited. A batch is exported before the next is read, so a slow collector pushes back through the pipe to
the gateway's bounded queue, where spans are dropped and counted, as the SDK's batch processor drops them.

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
from gateway.observe.span_wire import (
    FAILED_OUTCOMES,
    TracedRequest,
    attempt_attributes,
    attempt_fields,
    attempt_span_name,
    read_frame,
    request_attributes,
    request_failed,
    request_span_name,
)

logger = logging.getLogger("gateway.tracing")

SAMPLED = TraceFlags(TraceFlags.SAMPLED)
UNSET = Status(StatusCode.UNSET)
DEFAULT_BATCH_SIZE = 512  # OTEL_BSP_MAX_EXPORT_BATCH_SIZE's default, when the settings do not say


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
    """Wire tuples -> the SDK's `ReadableSpan`s, with one resource and scope for the process's spans."""

    __slots__ = ("limits", "resource", "scope")

    def __init__(self, service: str) -> None:
        # Resource.create adds OTEL_RESOURCE_ATTRIBUTES and the SDK's own attributes, as a TracerProvider's.
        self.resource = Resource.create({"service.name": service, "service.version": __version__})
        self.scope = InstrumentationScope("gateway", __version__)
        self.limits = SpanLimits()

    def spans(self, item: Sequence[Any]) -> list[ReadableSpan]:
        """A traced request's spans: its own (SERVER), then one per attempt (CLIENT), in order."""
        request = TracedRequest(*item)
        attempts = [attempt_fields(attempt) for attempt in request.attempts]
        state = TraceState.from_header([request.tracestate]) if request.tracestate else TraceState()
        trace_id = int(request.trace_id, 16)
        context = SpanContext(trace_id, request.span_id, False, SAMPLED, state)
        parent = (
            SpanContext(trace_id, int(request.parent_span_id, 16), True, SAMPLED, state)
            if request.parent_span_id
            else None
        )
        attributes = request_attributes(request, attempts)
        failed = request_failed(attributes)
        status = Status(StatusCode.ERROR, attributes.get("error.type")) if failed else UNSET
        spans = [
            self._span(request_span_name(attributes), context, parent, attributes, SpanKind.SERVER, status,
                       request.start_ns, request.end_ns)
        ]  # fmt: skip
        operation = attributes.get("gen_ai.operation.name", "chat")
        for attempt in attempts:
            named = attempt_attributes(operation, attempt)
            outcome = named.get("gateway.attempt.outcome")
            failed = outcome in FAILED_OUTCOMES
            spans.append(
                self._span(
                    attempt_span_name(named),
                    SpanContext(trace_id, int(attempt.span_id, 16), False, SAMPLED, state),
                    context,
                    named,
                    SpanKind.CLIENT,
                    Status(StatusCode.ERROR, named.get("error.type")) if failed else UNSET,
                    attempt.start_ns,
                    attempt.end_ns if attempt.end_ns is not None else request.end_ns,
                )
            )
        return spans

    def _span(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        named: dict[str, Any],
        kind: SpanKind,
        status: Status,
        start_ns: int,
        end_ns: int,
    ) -> ReadableSpan:
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
            name=name,
            context=context,
            parent=parent,
            resource=self.resource,
            attributes=attributes,
            kind=kind,
            status=status,
            start_time=start_ns,
            end_time=end_ns,
            instrumentation_scope=self.scope,
        )


def export_all(stream: Any) -> None:
    """Read the settings, then export batch after batch until the stream ends, at most
    `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` spans per export (a request's spans stay in one)."""
    settings = read_frame(stream)
    if not isinstance(settings, dict):
        return
    exporters = build_exporters(settings)
    builder = SpanBuilder(settings["service"])
    batch_size = max(int(settings.get("batch_size", DEFAULT_BATCH_SIZE)), 1)
    try:
        while (batch := read_frame(stream)) is not None:
            spans: list[ReadableSpan] = []
            for item in batch:
                try:
                    spans.extend(builder.spans(item))
                except (KeyError, TypeError, ValueError):
                    logger.exception("a traced request could not be read: its spans dropped")
                if len(spans) >= batch_size:
                    export(exporters, spans)
                    spans = []
            if spans:
                export(exporters, spans)
    finally:
        for exporter in exporters:
            exporter.shutdown()


def export(exporters: list[SpanExporter], spans: list[ReadableSpan]) -> None:
    for exporter in exporters:
        try:
            exporter.export(spans)
        except Exception:  # one exporter's failure must not stop the others or the next batch
            logger.exception("the %s exporter failed", type(exporter).__name__)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    export_all(sys.stdin.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
