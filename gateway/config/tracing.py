"""The `settings.tracing` section: traces of requests and of their upstream attempts (observe/tracing.py).

Every field may be left out; what is not written falls back to the standard `OTEL_*` environment variables
(`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
...), read when the gateway starts. Tracing is off unless `enabled: true` or `OTEL_TRACES_EXPORTER=otlp`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """`settings.tracing`; None: not written (the environment decides)."""

    enabled: bool | None = None
    endpoint: str | None = None  # the OTLP/HTTP traces URL; a bare origin gets /v1/traces
    service_name: str | None = None
    sample_ratio: float | None = None  # parent-based ratio sampler; None: OTEL_TRACES_SAMPLER or always on
    capture_content: bool = False  # prompts and answers on the request span: never unless asked for


def build_tracing(sections: Mapping[str, Any]) -> TracingSettings:
    """The tracing settings of sections that passed the schema."""
    raw = (sections.get("settings") or {}).get("tracing") or {}
    ratio = raw.get("sample_ratio")
    return TracingSettings(
        enabled=raw.get("enabled"),
        endpoint=raw.get("endpoint"),
        service_name=raw.get("service_name"),
        sample_ratio=None if ratio is None else float(ratio),
        capture_content=bool(raw.get("capture_content", False)),
    )
