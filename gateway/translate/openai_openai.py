"""OpenAI chat in, an OpenAI-compatible chat upstream out (OpenAI, DeepSeek, 01.AI, Ollama's /v1, the mock).

The identity pair, so it is cheap: the request changes only its model name (and asks for the usage chunk
when the gateway wants usage), answers and stream events pass through as they came. The usage-chunk policy
lives here alone: with the provider's `stream_usage` on, the upstream is asked for the usage-only chunk
that ends a stream; when the client did not ask for it itself, that chunk is recorded and not forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.config.models import ProviderConfig, RouteConfig
from gateway.errors import UpstreamStatusError
from gateway.streaming.relay import ByteStream, StreamCallback, StreamRelay, StreamStats
from gateway.streaming.sse import frame
from gateway.translate.base import usage_block
from gateway.translate.openai_errors import read_openai_error

# Body fields meant for the gateway itself; they never reach a provider.
GATEWAY_FIELDS = ("x_use_asgi_streaming",)


class OpenAIChatToOpenAIChat:
    __slots__ = ("_drop_usage_chunk", "_request_usage")

    passthrough = True

    def __init__(
        self,
        body: dict[str, Any],
        provider: ProviderConfig,
        *,
        stream: bool,
        route: RouteConfig | None = None,
    ) -> None:
        self._request_usage = stream and provider.stream_usage
        self._drop_usage_chunk = self._request_usage and not client_wants_usage(body)

    def request_body(self, body: dict[str, Any], upstream_model: str, raw: bytes = b"") -> bytes:
        out = dict(body)
        out["model"] = upstream_model
        for name in GATEWAY_FIELDS:
            out.pop(name, None)
        if self._request_usage and out.get("stream"):
            options = out.get("stream_options")
            out["stream_options"] = (
                {**options, "include_usage": True} if isinstance(options, dict) else {"include_usage": True}
            )
        return orjson.dumps(out)

    def response_body(self, content: bytes) -> bytes:
        return content

    def response_usage(self, answer: Any) -> dict[str, Any] | None:
        return usage_block(answer)

    def keep_usage_event(self, event: dict[str, Any]) -> bool:
        # The usage-only chunk (no choices) the gateway asked for on the client's behalf stays here.
        return not (self._drop_usage_chunk and not event.get("choices"))

    def event(self, payload: bytes) -> bytes:
        return frame(payload)

    def open_relay(
        self, upstream: ByteStream, stats: StreamStats, on_finish: list[StreamCallback]
    ) -> StreamRelay:
        return StreamRelay(upstream, stats, events=self, on_finish=on_finish)

    def upstream_error(
        self, status_code: int, content: bytes, headers: Mapping[str, str], provider: str
    ) -> UpstreamStatusError:
        return read_openai_error(status_code, content, headers, provider)


def client_wants_usage(body: dict[str, Any]) -> bool:
    """Did the client itself ask for the usage chunk at the end of a stream?"""
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))
