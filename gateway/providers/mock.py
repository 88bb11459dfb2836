"""The built-in `mock` provider: an in-process `UpstreamTransport` that speaks the OpenAI chat API.

Deterministic (the same request gives the same text), needs no network and no key, streams with a
configurable token count and per-token delay, and reports a proper `usage` block. Because it is a transport,
requests to it go through exactly the same translation, streaming and resilience code as a real provider.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from gateway.config.models import MockOptions
from gateway.providers.transport import PoolState, WireRequest

MOCK_BASE_URL = "http://mock.gateway.invalid/v1"


class MockTransport:
    def __init__(self, options: MockOptions) -> None:
        self.options = options
        self._words = options.text.split() or ["mock"]

    async def send(self, request: WireRequest) -> MockResponse:
        path = urlsplit(request.url).path
        if request.method == "GET" and path.endswith("/models"):
            return _json(200, {"object": "list", "data": [_model_entry("mock")]})
        chat = path.endswith("/chat/completions")
        if request.method != "POST" or not (chat or path.endswith("/embeddings")):
            return _error(404, f"mock provider has no {request.method} {path}", "not_found")
        try:
            body = orjson.loads(request.content)
        except orjson.JSONDecodeError:
            return _error(400, "mock provider: body is not JSON", "invalid_json")
        if not isinstance(body, dict):
            return _error(400, "mock provider: body must be a JSON object", "invalid_json")
        if not chat:
            return _json(200, mock_embeddings(body))
        answer = _Answer(body, self._words, self.options)
        if body.get("stream"):
            options = body.get("stream_options")
            usage = isinstance(options, dict) and bool(options.get("include_usage"))
            events = _stream(answer, self.options.token_delay, usage)
            return MockResponse(200, {"content-type": "text/event-stream"}, events=events)
        return _json(200, answer.completion())

    def pool_state(self) -> PoolState:
        return PoolState(0, 0)  # in process: no connections

    async def aclose(self) -> None:
        return None


def mock_embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """Deterministic 8-dimensional vectors, one per input, from a hash of the text (same text, same
    vector); base64 when asked, as OpenAI encodes it (little-endian float32)."""
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else list(inputs) if isinstance(inputs, list) else []
    data = []
    for index, text in enumerate(texts):
        digest = hashlib.sha256(str(text).encode()).digest()
        vector = [round(byte / 255 - 0.5, 6) for byte in digest[:8]]
        embedding: Any = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack("<8f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(max(1, len(str(text)) // 4) for text in texts)
    model = str(body.get("model", "mock"))
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


class MockResponse:
    """A `WireResponse` made in process: a whole body, or events produced as the stream is read."""

    __slots__ = ("_events", "complete", "content", "headers", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str],
        *,
        content: bytes = b"",
        events: AsyncGenerator[bytes, None] | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self._events = events
        self.complete = events is None

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        if self._events is None:
            if self.content:
                yield self.content
            return
        async for chunk in self._events:
            yield chunk
        self.complete = True

    async def aclose(self) -> None:
        events, self._events = self._events, None
        if events is not None:
            await events.aclose()


class _Answer:
    """The deterministic answer to one request."""

    def __init__(self, body: dict[str, Any], words: list[str], options: MockOptions) -> None:
        self.model = str(body.get("model") or "mock")
        prompt = orjson.dumps(body.get("messages") or [])
        digest = hashlib.sha256(prompt).hexdigest()
        self.id = f"chatcmpl-mock{digest[:24]}"
        self.created = int(time.time())
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        count = options.tokens
        if isinstance(limit, int) and limit > 0:
            count = min(count, limit)
        self.tokens = [(words[i % len(words)] + " ") for i in range(count)]
        if self.tokens:
            self.tokens[-1] = self.tokens[-1].rstrip()
        self.prompt_tokens = max(1, len(prompt) // 4)

    @property
    def usage(self) -> dict[str, int]:
        completion = len(self.tokens)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }

    def completion(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(self.tokens), "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": self.usage,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
        )

    def usage_chunk(self) -> bytes:
        return orjson.dumps(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage,
            }
        )


async def _stream(answer: _Answer, token_delay: float, include_usage: bool) -> AsyncGenerator[bytes, None]:
    yield b"data: " + answer.chunk({"role": "assistant", "content": ""}) + b"\n\n"
    for token in answer.tokens:
        if token_delay:
            await asyncio.sleep(token_delay)
        yield b"data: " + answer.chunk({"content": token}) + b"\n\n"
    yield b"data: " + answer.chunk({}, "stop") + b"\n\n"
    if include_usage:
        yield b"data: " + answer.usage_chunk() + b"\n\n"
    yield b"data: [DONE]\n\n"


def _model_entry(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "gateway-mock"}


def _json(status: int, payload: dict[str, Any]) -> MockResponse:
    return MockResponse(status, {"content-type": "application/json"}, content=orjson.dumps(payload))


def _error(status: int, message: str, code: str) -> MockResponse:
    return _json(
        status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    )
