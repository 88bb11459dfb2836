"""OpenAI Responses in (stateless), an OpenAI-compatible chat upstream out (DeepSeek, 01.AI, the mock).

The request is mapped exactly or refused (`responses_chat_request.py`; nothing is stored, so what needs a
stored response is refused), the answer becomes a `Response` object (`responses_chat_response.py`), the
stream a Responses event stream (`responses_chat_stream.py`). The upstream's error body passes through
in OpenAI's shape, which is also the Responses client's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gateway.config.models import ProviderConfig, RouteConfig
from gateway.errors import UpstreamStatusError
from gateway.streaming.event_relay import EventRelay
from gateway.streaming.relay import ByteStream, StreamCallback, StreamStats
from gateway.translate.base import usage_block
from gateway.translate.openai_errors import read_openai_error
from gateway.translate.responses_chat_request import chat_request
from gateway.translate.responses_chat_response import echo, response_body
from gateway.translate.responses_chat_stream import ResponsesStreamFromChat


class ResponsesToChat:
    __slots__ = ("_created_at", "_echoed", "_stream_usage")

    passthrough = False

    def __init__(
        self,
        body: dict[str, Any],
        provider: ProviderConfig,
        *,
        stream: bool,
        route: RouteConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._created_at = int(clock())  # one `created_at` for the attempt, in every event of a stream
        self._echoed = echo(body)  # answers name the model the client asked for, and its parameters
        self._stream_usage = stream and provider.stream_usage

    def request_body(self, body: dict[str, Any], upstream_model: str, raw: bytes = b"") -> bytes:
        return orjson.dumps(chat_request(body, upstream_model, stream_usage=self._stream_usage))

    def response_body(self, content: bytes) -> bytes:
        return response_body(content, self._echoed, self._created_at)

    def response_usage(self, answer: Any) -> dict[str, Any] | None:
        return usage_block(answer)

    def stream_events(self) -> ResponsesStreamFromChat:
        return ResponsesStreamFromChat(self._echoed, self._created_at)

    def open_relay(
        self, upstream: ByteStream, stats: StreamStats, on_finish: list[StreamCallback]
    ) -> EventRelay:
        return EventRelay(upstream, stats, self.stream_events(), on_finish)

    def upstream_error(
        self, status_code: int, content: bytes, headers: Mapping[str, str], provider: str
    ) -> UpstreamStatusError:
        return read_openai_error(status_code, content, headers, provider)
