"""Anthropic Messages in, an OpenAI-compatible chat upstream out (DeepSeek, Ollama's /v1, vLLM, OpenAI).

The request is mapped exactly or refused (`messages_chat_request.py`), the answer becomes a `Message`
(`messages_chat_response.py`), the stream an Anthropic event stream (`messages_chat_stream.py`), and the
upstream's OpenAI error body an Anthropic error body with the same status and message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.config.models import ProviderConfig, RouteConfig
from gateway.errors import UpstreamStatusError
from gateway.streaming.event_relay import EventRelay
from gateway.streaming.relay import ByteStream, StreamCallback, StreamStats
from gateway.translate.anthropic_errors import anthropic_error_body, error_type_for
from gateway.translate.base import usage_block
from gateway.translate.messages_chat_request import chat_request
from gateway.translate.messages_chat_response import message_body
from gateway.translate.messages_chat_stream import ChatStreamToMessages
from gateway.translate.openai_errors import read_openai_error


class MessagesToChat:
    __slots__ = ("_model", "_stream_usage")

    passthrough = False

    def __init__(
        self,
        body: dict[str, Any],
        provider: ProviderConfig,
        *,
        stream: bool,
        route: RouteConfig | None = None,
    ) -> None:
        self._model = str(body.get("model") or "")  # answers name the model the client asked for
        self._stream_usage = stream and provider.stream_usage

    def request_body(self, body: dict[str, Any], upstream_model: str, raw: bytes = b"") -> bytes:
        return orjson.dumps(chat_request(body, upstream_model, stream_usage=self._stream_usage))

    def response_body(self, content: bytes) -> bytes:
        return message_body(content, self._model)

    def response_usage(self, answer: Any) -> dict[str, Any] | None:
        return usage_block(answer)

    def stream_events(self) -> ChatStreamToMessages:
        return ChatStreamToMessages(self._model)

    def open_relay(
        self, upstream: ByteStream, stats: StreamStats, on_finish: list[StreamCallback]
    ) -> EventRelay:
        return EventRelay(upstream, stats, self.stream_events(), on_finish)

    def upstream_error(
        self, status_code: int, content: bytes, headers: Mapping[str, str], provider: str
    ) -> UpstreamStatusError:
        read = read_openai_error(status_code, content, headers, provider)
        error_type = error_type_for(status_code)
        return UpstreamStatusError(
            status_code,
            content,
            headers=read.headers or None,
            provider=provider,
            message=read.message,
            error_type=error_type,
            code=read.code,
            param=read.param,
            client_body=anthropic_error_body(status_code, read.message, error_type),
            client_format="anthropic",
        )
