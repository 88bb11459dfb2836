"""OpenAI embeddings in, an upstream that serves them out (OpenAI, Ollama, vLLM, the mock): pass-through.

The body goes as the client sent it (only `model` changes when the route renames it); the answer comes back
as the upstream wrote it, `encoding_format` float or base64 alike. Embeddings never stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.errors import UpstreamStatusError
from gateway.streaming.relay import ByteStream, Relay, StreamCallback, StreamStats
from gateway.translate.openai_errors import read_openai_error
from gateway.translate.passthrough import PassThroughBody


class EmbeddingsToEmbeddings(PassThroughBody):
    __slots__ = ()

    def response_usage(self, answer: Any) -> dict[str, Any] | None:
        usage = answer.get("usage") if isinstance(answer, dict) else None
        if not isinstance(usage, dict):
            return None
        prompt = int(usage.get("prompt_tokens") or 0)
        return {"prompt_tokens": prompt, "completion_tokens": 0, "total_tokens": prompt}

    def upstream_error(
        self, status_code: int, content: bytes, headers: Mapping[str, str], provider: str
    ) -> UpstreamStatusError:
        return read_openai_error(status_code, content, headers, provider)

    def open_relay(self, upstream: ByteStream, stats: StreamStats, on_finish: list[StreamCallback]) -> Relay:
        raise AssertionError("embeddings are answered whole: the endpoint never asks for a stream")
