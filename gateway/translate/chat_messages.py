"""OpenAI chat in, Anthropic Messages upstream out (Anthropic's own API, provider `type: anthropic`).

The halves live beside it: `chat_messages_request` (+ `chat_messages_content`: the turns) builds the
Messages request and refuses what has no exact place in it; `chat_messages_response` turns a Message into a
chat.completion; `chat_messages_stream` turns Messages stream events into chat chunks.

Decisions a client can see:
- system/developer messages before the first turn become `system`: one string message stays a string,
  several messages or content parts become text blocks one for one; one after a turn is refused.
- thinking goes out as `reasoning_content` + LiteLLM's `thinking_blocks` (with signatures), and comes back
  only with them: Anthropic refuses unsigned thinking. `reasoning_effort` asks for a thinking budget
  (`chat_messages_request.THINKING_BUDGETS`) that must stay below max_tokens.
- `parallel_tool_calls: false` sets `disable_parallel_tool_use` on the tool choice (auto when none given).
- `pause_turn` and server-tool blocks have no chat form: an upstream protocol error, never a quiet `stop`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gateway.config.models import ProviderConfig, RouteConfig
from gateway.errors import UpstreamProtocolError, UpstreamStatusError
from gateway.streaming.event_relay import EventRelay
from gateway.streaming.relay import ByteStream, StreamCallback, StreamStats
from gateway.translate.anthropic_errors import read_anthropic_error
from gateway.translate.chat_messages_request import messages_request
from gateway.translate.chat_messages_response import chat_completion, chat_usage
from gateway.translate.chat_messages_stream import MessagesStreamToChat
from gateway.translate.openai_openai import client_wants_usage


class ChatToMessages:
    __slots__ = ("_created", "_default_max_tokens", "_include_usage", "_provider")

    def __init__(
        self,
        body: dict[str, Any],
        provider: ProviderConfig,
        *,
        stream: bool,
        route: RouteConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # One `created` for the attempt: every chunk of a stream carries the same one, as OpenAI's do.
        self._created = int(clock())
        self._default_max_tokens = route.default_max_tokens
        self._include_usage = stream and client_wants_usage(body)
        self._provider = provider.name

    def request_body(self, body: dict[str, Any], upstream_model: str, raw: bytes = b"") -> bytes:
        return orjson.dumps(messages_request(body, upstream_model, self._default_max_tokens))

    def response_body(self, content: bytes) -> bytes:
        return orjson.dumps(chat_completion(content, self._created))

    def response_usage(self, answer: Any) -> dict[str, Any] | None:
        usage = answer.get("usage") if isinstance(answer, dict) else None
        if not isinstance(usage, dict):
            return None
        try:
            return chat_usage(usage)
        except UpstreamProtocolError:
            return None

    def stream_events(self) -> MessagesStreamToChat:
        return MessagesStreamToChat(
            created=self._created, include_usage=self._include_usage, provider=self._provider
        )

    def open_relay(
        self, upstream: ByteStream, stats: StreamStats, on_finish: list[StreamCallback]
    ) -> EventRelay:
        return EventRelay(upstream, stats, self.stream_events(), on_finish)

    def upstream_error(
        self, status_code: int, content: bytes, headers: Mapping[str, str], provider: str
    ) -> UpstreamStatusError:
        return read_anthropic_error(status_code, content, headers, provider, for_messages_client=False)
