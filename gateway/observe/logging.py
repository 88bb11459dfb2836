"""Logging setup: `LOG_LEVEL` (default INFO) and `LOG_FORMAT` (`text`, default, or `json`).

Every line written while a request is served carries its id: a filter on the gateway's handler copies
the id from the request's context (`observe.request_id`) onto the record, unless the record brings its
own (the access line passes it explicitly). `json` writes one object per line with orjson: `time`,
`level`, `logger`, `message`, `request_id` when there is one, the access line's fields at the top level
and `exception` with the traceback. Formatting happens only for lines that pass the level check, so a
level that is off costs one integer comparison per call site.

The server's own lines (uvicorn's `uvicorn.*` loggers: invalid requests, an exception that escaped the
app, worker restarts) go through the same handler, so a JSON log stays one object per line; `gateway
serve` starts uvicorn without its own logging config, and uvicorn sets only their levels.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from typing import IO, Any, Literal

import orjson

from gateway.observe.request_id import current_request_id

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LEVEL_ENV = "LOG_LEVEL"
FORMAT_ENV = "LOG_FORMAT"
GATEWAY_LOGGER = "gateway"
SERVER_LOGGER = "uvicorn"
TEXT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


class RequestIdFilter(logging.Filter):
    """Puts `request_id` (None outside a request) on every record that has none. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id.get()
        return True


class TextFormatter(logging.Formatter):
    """`2026-01-01 12:00:00,123 INFO gateway.access req_abc: message` (no id part outside a request)."""

    def __init__(self) -> None:
        super().__init__(datefmt=TEXT_DATE_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        who = f"{record.name} {request_id}" if request_id else record.name
        line = f"{self.formatTime(record, self.datefmt)},{int(record.msecs):03d} {record.levelname} {who}: "
        line += record.getMessage()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line (orjson): easy to ship to Loki, Elasticsearch or CloudWatch as is."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            entry.update(access)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()


def parse_log_level(value: str | None = None) -> int:
    """`value`, else `$LOG_LEVEL`, else INFO, as a logging level; a ValueError names the bad value."""
    name = (value or os.environ.get(LEVEL_ENV) or "INFO").strip().upper()
    level = logging.getLevelNamesMapping().get(name)
    if level is None:
        raise ValueError(f"unknown log level {name!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def parse_log_format(value: str | None = None) -> LogFormat:
    """`value`, else `$LOG_FORMAT`, else text; a ValueError names the bad value."""
    name = (value or os.environ.get(FORMAT_ENV) or "text").strip().lower()
    if name not in LOG_FORMATS:
        raise ValueError(f"unknown log format {name!r}: use text or json")
    return name  # narrowed to LogFormat by the membership test


def configure_logging(
    level: str | None = None, output_format: str | None = None, *, stream: IO[str] | None = None
) -> None:
    """Send the `gateway` loggers to `stream` (stderr) at `level` in `output_format` (text or json;
    both default from the environment), and uvicorn's in the same format. Idempotent: replaces the
    handlers an earlier call installed. Raises ValueError for an unknown level or format, before
    changing anything."""
    level_number = parse_log_level(level)
    json_lines = parse_log_format(output_format) == "json"
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger(GATEWAY_LOGGER)
    root.handlers[:] = [handler]
    root.setLevel(level_number)
    root.propagate = False
    server = logging.getLogger(SERVER_LOGGER)
    server.handlers[:] = [handler]
    server.propagate = False
