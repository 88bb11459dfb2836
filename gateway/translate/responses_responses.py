"""OpenAI Responses in, an upstream that speaks Responses out (OpenAI; Ollama's /v1/responses): the
pass-through pair. The body goes as it came (only `model` changes when the route renames it); events go back
re-framed exactly as OpenAI frames them, the usage read from the final `response.*` event alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import GatewayError, UpstreamProtocolError, UpstreamStatusError
from gateway.streaming.event_relay import EventRelay
from gateway.streaming.relay import ByteStream, StreamCallback, StreamStats
from gateway.streaming.sse import named_frame
from gateway.translate.openai_errors import read_openai_error
from gateway.translate.passthrough import PassThroughBody

# The events that end a Responses stream; each carries the whole response, usage included.
FINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete", "error"})


def chat_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """Responses' usage block in the gateway's (chat's) shape."""
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": int(cached)}
    return out


class ResponsesToResponses(PassThroughBody):
    __slots__ = ()

    def response_usage(self, answer: Any) -> dict[str, Any] | None:
        usage = answer.get("usage") if isinstance(answer, dict) else None
        return chat_usage(usage) if isinstance(usage, dict) else None

    def upstream_error(
        self, status_code: int, content: bytes, headers: Mapping[str, str], provider: str
    ) -> UpstreamStatusError:
        return read_openai_error(status_code, content, headers, provider)

    def open_relay(
        self, upstream: ByteStream, stats: StreamStats, on_finish: list[StreamCallback]
    ) -> EventRelay:
        return EventRelay(upstream, stats, ResponsesEvents(stats.provider), on_finish)


class ResponsesEvents:
    """A Responses stream passed through event by event. Events are counted, not parsed (but the final
    ones), so that an `error` event of ours gets the next `sequence_number` (OpenAI numbers from 0)."""

    __slots__ = ("_ended", "_events", "_provider", "_usage")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._usage: dict[str, Any] | None = None
        self._ended = False
        self._events = 0

    def feed(self, event: str, data: bytes) -> bytes:
        self._events += 1
        if not event or event in FINAL_EVENTS:
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise UpstreamProtocolError(
                    f"provider {self._provider!r} sent a malformed stream event: {data[:80]!r}"
                ) from None
            if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
                raise UpstreamProtocolError(f"provider {self._provider!r} sent an event without a type")
            event = event or parsed["type"]
            if event in FINAL_EVENTS:
                self._ended = True
                response = parsed.get("response")
                usage = response.get("usage") if isinstance(response, dict) else None
                if isinstance(usage, dict):
                    self._usage = chat_usage(usage)
        return named_frame(event, data)

    @property
    def ended(self) -> bool:
        return self._ended

    def end(self) -> bytes:
        if not self._ended:
            raise UpstreamProtocolError(
                f"provider {self._provider!r} ended the stream before response.completed"
            )
        return b""

    def error(self, exc: GatewayError) -> bytes:
        body = {
            "type": "error",
            "code": exc.code,
            "message": exc.message,
            "param": exc.param,
            "sequence_number": self._events,
        }
        return named_frame("error", orjson.dumps(body))

    @property
    def usage(self) -> dict[str, Any] | None:
        return self._usage
