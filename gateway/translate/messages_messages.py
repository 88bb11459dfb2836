"""Anthropic Messages in, an upstream that speaks Messages out (Anthropic, DeepSeek's /anthropic, Ollama):
the pass-through pair.

The client's body goes as it came, byte for byte, unless the route sends another model name (then only
`model` changes). Answers and stream events go back unchanged; the translator only reads the usage from
`message_start` and `message_delta` (parsing those two events alone) and notices `message_stop`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import GatewayError, UpstreamProtocolError, UpstreamStatusError
from gateway.streaming.event_relay import EventRelay
from gateway.streaming.relay import ByteStream, StreamCallback, StreamStats
from gateway.streaming.sse import named_frame
from gateway.translate.anthropic_errors import anthropic_error_event, read_anthropic_error
from gateway.translate.anthropic_usage import chat_usage
from gateway.translate.passthrough import PassThroughBody


class MessagesToMessages(PassThroughBody):
    __slots__ = ()

    def response_usage(self, answer: Any) -> dict[str, Any] | None:
        usage = answer.get("usage") if isinstance(answer, dict) else None
        return chat_usage(usage) if isinstance(usage, dict) else None

    def upstream_error(
        self, status_code: int, content: bytes, headers: Mapping[str, str], provider: str
    ) -> UpstreamStatusError:
        return read_anthropic_error(status_code, content, headers, provider, for_messages_client=True)

    def open_relay(
        self, upstream: ByteStream, stats: StreamStats, on_finish: list[StreamCallback]
    ) -> EventRelay:
        return EventRelay(upstream, stats, MessagesEvents(stats.provider), on_finish)


class MessagesEvents:
    """A Messages stream passed through: each event re-framed exactly as Anthropic frames it."""

    __slots__ = ("_ended", "_provider", "_stopped", "_usage")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._usage: dict[str, Any] = {}
        self._ended = False
        self._stopped = False  # message_stop arrived (not an error event)

    def feed(self, event: str, data: bytes) -> bytes:
        if not event:
            event = self._name_of(data)
        if event == "message_start" or event == "message_delta":
            self._read_usage(event, data)
        elif event == "message_stop":
            self._ended = self._stopped = True
        elif event == "error":
            self._ended = True  # the upstream's own error event goes to the client, and ends the stream
        return named_frame(event, data)

    @property
    def ended(self) -> bool:
        return self._ended

    def end(self) -> bytes:
        if not self._ended:
            raise UpstreamProtocolError(f"provider {self._provider!r} ended the stream before message_stop")
        return b""

    def error(self, exc: GatewayError) -> bytes:
        return anthropic_error_event(exc)

    @property
    def usage(self) -> dict[str, Any] | None:
        return chat_usage(self._usage) if self._usage else None

    def _read_usage(self, event: str, data: bytes) -> None:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(
                f"provider {self._provider!r} sent a malformed {event} event: {data[:80]!r}"
            ) from None
        holder = parsed.get("message") if event == "message_start" and isinstance(parsed, dict) else parsed
        usage = holder.get("usage") if isinstance(holder, dict) else None
        if isinstance(usage, dict):
            # message_delta's counts are cumulative and replace message_start's where both are given.
            self._usage.update((key, value) for key, value in usage.items() if value is not None)

    def _name_of(self, data: bytes) -> str:
        """An event without an `event:` line (some servers omit it): its name is its data's `type`."""
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(
                f"provider {self._provider!r} sent a malformed stream event: {data[:80]!r}"
            ) from None
        name = parsed.get("type") if isinstance(parsed, dict) else None
        if not isinstance(name, str):
            raise UpstreamProtocolError(f"provider {self._provider!r} sent an event without a type")
        return name
