"""A successful non-streaming answer as the attempt loop returns it (`resilience/dispatch.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.translate import Translator


@dataclass(slots=True)  # one per request: not frozen, which costs 1 us more to build
class Completion:
    """A successful non-streaming answer, in the client's API; `usage()` reads it only when asked."""

    status_code: int
    content: bytes
    headers: dict[str, str]
    upstream_content: bytes
    translator: Translator
    parsed: bool = False  # `answer()` was asked: `parsed_answer` holds what it read
    parsed_answer: Any = None
    usage_read: bool = False  # `usage()` was asked: `read_usage` holds its answer
    read_usage: dict[str, Any] | None = None

    def answer(self) -> Any:
        """The upstream's answer as JSON (None when it is not JSON), parsed once for the record's usage and
        a traced attempt's span."""
        if not self.parsed:
            try:
                self.parsed_answer = orjson.loads(self.upstream_content)
            except orjson.JSONDecodeError:
                self.parsed_answer = None
            self.parsed = True
        return self.parsed_answer

    def usage(self) -> dict[str, Any] | None:
        """The answer's usage, read once (a traced request's span and its record both ask)."""
        if not self.usage_read:
            self.read_usage = self.translator.response_usage(self.answer())
            self.usage_read = True
        return self.read_usage
