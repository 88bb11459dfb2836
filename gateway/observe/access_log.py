"""The access log: one line per finished chat request on the `gateway.access_log` logger, at INFO (at
WARNING for a stream that failed after its first byte, or was cut by the shutdown).

Text output is `key=value` pairs (the formatter puts the request id in front, see `observe.logging`);
the same fields ride along on the log record as `record.access` (a dict), so the JSON formatter writes
them as fields instead. Its own logger (not `gateway.access`, which is access control's) lets an
operator turn the access lines off alone (`logging.getLogger("gateway.access_log").setLevel("WARNING")`).
With the logger above INFO the observer returns after one level check, before building anything: free
when off. A record holds nothing secret (a gateway key by name, never its value), so nothing here redacts.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.config.prices import format_cost
from gateway.records import RequestRecord

ACCESS_LOGGER = "gateway.access_log"
TEXT_FORMAT = (
    "%s model=%s route=%s provider=%s status=%d attempts=%d duration_ms=%.1f "
    "prompt_tokens=%s completion_tokens=%s config_version=%s%s"
)


def access_fields(record: RequestRecord) -> dict[str, Any]:
    """The access line's fields, for structured (JSON) output."""
    fields: dict[str, Any] = {
        "request_id": record.request_id,
        "kind": "stream" if record.stream else "complete",
        "api": record.api,
        "model": record.model,
        "route": record.route,
        "provider": record.provider,
        "upstream_model": record.upstream_model,
        "status": record.status_code,
        "attempts": record.attempts,
        "retries": record.retries,
        "failovers": record.failovers,
        "duration_ms": round(record.duration * 1000, 2),
        "prompt_tokens": record.prompt_tokens if record.usage else None,
        "completion_tokens": record.completion_tokens if record.usage else None,
        # Parts of prompt_tokens priced apart: replay (`gateway replay`) costs them as the request was.
        "cached_tokens": record.prompt_detail("cached_tokens") if record.usage else None,
        "cache_write_tokens": record.prompt_detail("cache_creation_tokens") if record.usage else None,
        "key": record.key_name,
        "error": record.error_code,
        # A decimal string: exact, where a JSON number would be read as a float.
        "cost": None if record.cost is None else format_cost(record.cost),
        "currency": record.currency,
        "cost_estimated": record.cost_estimated,
        "config_version": record.config_version or None,
    }
    if record.stream:
        fields["stream_status"] = record.stream_status
        fields["chunks"] = record.chunks
        ttft = record.time_to_first_chunk
        fields["first_token_ms"] = None if ttft is None else round(ttft * 1000, 2)
    return fields


class AccessLog:
    """A request observer writing the access line. One per app; holds only its logger."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger(ACCESS_LOGGER)

    async def request_finished(self, record: RequestRecord) -> None:
        logger = self.logger
        level = logging.WARNING if record.stream and record.stream_status == "error" else logging.INFO
        if not logger.isEnabledFor(level):
            return
        usage = record.usage is not None
        tail = []
        if record.retries or record.failovers:
            tail.append(f" retries={record.retries} failovers={record.failovers}")
        if record.stream:
            ttft = record.time_to_first_chunk
            first = "-" if ttft is None else f"{ttft * 1000:.1f}"
            tail.append(
                f" stream={record.stream_status or '-'} chunks={record.chunks} first_token_ms={first}"
            )
        if record.api != "chat":
            tail.append(f" api={record.api}")
        if record.key_name:
            tail.append(f" key={record.key_name}")
        if record.error_code:
            tail.append(f" error={record.error_code}")
        if record.cost is not None:
            tail.append(f" cost={format_cost(record.cost)} {record.currency}")
            if record.cost_estimated:
                tail.append(" cost_estimated=true")
        logger.log(
            level,
            TEXT_FORMAT,
            "stream" if record.stream else "complete",
            record.model,
            record.route or "-",
            record.provider or "-",
            record.status_code,
            record.attempts,
            record.duration * 1000,
            record.prompt_tokens if usage else "-",
            record.completion_tokens if usage else "-",
            record.config_version or "-",
            "".join(tail),
            extra={"access": access_fields(record), "request_id": record.request_id},
        )
