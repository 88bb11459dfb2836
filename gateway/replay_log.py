"""Read a recorded access log (`LOG_FORMAT=json`, observe/access_log.py) back as logged requests.

The file is streamed line by line, never loaded whole. Lines that are not JSON objects, JSON lines of
other loggers (uvicorn's, the gateway's own warnings) and access lines that cannot be judged (no model:
refused before the body was read, 401, or a malformed body) are counted and skipped. A line may carry a
prefix before its JSON object (a container runtime's timestamp): the object starts at the first `{`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from gateway.config.apis import SHORT_NAMES
from gateway.config.models import ApiName
from gateway.config.prices import NANO
from gateway.observe.access_log import ACCESS_LOGGER


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One access line: what was asked, and what the gateway did with it then."""

    request_id: str
    time: str  # as logged (ISO 8601, when the request ended)
    ended: float  # epoch seconds
    arrived: float  # epoch seconds: `ended` minus the logged duration
    api: ApiName
    model: str
    key: str | None
    route: str | None
    provider: str | None
    upstream_model: str | None
    status: int
    error: str | None
    failovers: int
    prompt_tokens: int | None  # None: no usage was reported (an error, a cut stream)
    completion_tokens: int | None
    cached_tokens: int | None  # parts of prompt_tokens; None in lines logged before they were
    cache_write_tokens: int | None
    cost: int | None  # nano-units, as logged
    currency: str | None

    @property
    def usage(self) -> dict[str, Any] | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }
        if self.cached_tokens or self.cache_write_tokens:
            usage["prompt_tokens_details"] = {
                "cached_tokens": self.cached_tokens or 0,
                "cache_creation_tokens": self.cache_write_tokens or 0,
            }
        return usage

    @property
    def tokens(self) -> int:
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


@dataclass(slots=True)
class ReadCounts:
    lines: int = 0
    requests: int = 0
    not_access_lines: int = 0  # not JSON, or another logger's line
    not_judged: int = 0  # access lines without a model or with an API this gateway does not know


def read_access_log(lines: Iterable[str], counts: ReadCounts) -> Iterator[LoggedRequest]:
    """The logged requests of `lines`, in file order; `counts` is filled in as they are read."""
    for line in lines:
        counts.lines += 1
        entry = _json_object(line)
        if entry is None or entry.get("logger", ACCESS_LOGGER) != ACCESS_LOGGER or "status" not in entry:
            counts.not_access_lines += 1
            continue
        request = _logged_request(entry)
        if request is None:
            counts.not_judged += 1
            continue
        counts.requests += 1
        yield request


def _json_object(line: str) -> dict[str, Any] | None:
    start = line.find("{")
    if start < 0:
        return None
    try:
        value = orjson.loads(line[start:])
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _logged_request(entry: dict[str, Any]) -> LoggedRequest | None:
    model, api, when = entry.get("model"), SHORT_NAMES.get(entry.get("api") or "chat"), entry.get("time")
    if not isinstance(model, str) or not model or api is None or not isinstance(when, str):
        return None
    try:
        ended = datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
        duration = float(entry.get("duration_ms") or 0) / 1000
        status = int(entry["status"])
    except (TypeError, ValueError):
        return None
    return LoggedRequest(
        request_id=str(entry.get("request_id") or "-"),
        time=when,
        ended=ended,
        arrived=ended - duration,
        api=api,
        model=model,
        key=_text(entry.get("key")),
        route=_text(entry.get("route")),
        provider=_text(entry.get("provider")),
        upstream_model=_text(entry.get("upstream_model")),
        status=status,
        error=_text(entry.get("error")),
        failovers=_count(entry.get("failovers")),
        prompt_tokens=_tokens(entry.get("prompt_tokens")),
        completion_tokens=_tokens(entry.get("completion_tokens")),
        cached_tokens=_tokens(entry.get("cached_tokens")),
        cache_write_tokens=_tokens(entry.get("cache_write_tokens")),
        cost=_nano(entry.get("cost")),
        currency=_text(entry.get("currency")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _tokens(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _nano(value: Any) -> int | None:
    """A logged cost (a decimal string, exact) in nano-units."""
    if not isinstance(value, str):
        return None
    try:
        return int(Decimal(value) * NANO)
    except InvalidOperation:
        return None
