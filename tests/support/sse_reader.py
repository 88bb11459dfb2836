"""A small, independent SSE reader for tests: what a client sees of a stream (gateway's or simulator's).

Kept apart from `gateway.streaming` on purpose, so a bug there cannot hide itself in the tests.
Follows the WHATWG rules: lines end with \\r\\n, \\n or \\r; `:` starts a comment; `data:` lines of one
event are joined with \\n; an empty line dispatches the event.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None
    received_at: float = 0.0  # time.time() when its last line arrived (set by `iter_sse`)

    @property
    def is_done(self) -> bool:
        return self.data == "[DONE]"

    def json(self) -> Any:
        return json.loads(self.data)


class SSEParser:
    """Feed lines (without their line ending); collects events and comments."""

    def __init__(self) -> None:
        self.comments: list[str] = []
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None

    def feed_line(self, line: str, received_at: float = 0.0) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = None
                return None
            event = SSEEvent("\n".join(self._data), self._event, self._id, received_at)
            self._data, self._event = [], None
            return event
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


def parse_sse(text: str) -> tuple[list[SSEEvent], list[str]]:
    """All complete events and all comments in `text`."""
    parser = SSEParser()
    events = [event for line in re.split(r"\r\n|\r|\n", text) if (event := parser.feed_line(line))]
    return events, parser.comments


def iter_sse(lines: Iterable[str] | httpx.Response) -> Iterator[SSEEvent]:
    """Events as they arrive from an open streaming response (or any iterable of lines)."""
    parser = SSEParser()
    source = lines.iter_lines() if isinstance(lines, httpx.Response) else lines
    for line in source:
        if (event := parser.feed_line(line, time.time())) is not None:
            yield event
