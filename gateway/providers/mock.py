"""The built-in `mock` provider: an in-process httpx transport that speaks the OpenAI chat API.

Deterministic (the same request gives the same text), needs no network and no key, streams with a
configurable token count and per-token delay, and reports a proper `usage` block. Because it is a transport,
requests to it go through exactly the same adapter, streaming and resilience code as a real provider.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from gateway.config.models import MockOptions

MOCK_BASE_URL = "http://mock.gateway.invalid/v1"


class MockTransport(httpx.AsyncBaseTransport):
    def __init__(self, options: MockOptions) -> None:
        self.options = options
        self._words = options.text.split() or ["mock"]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET" and path.endswith("/models"):
            return _json(200, {"object": "list", "data": [_model_entry("mock")]})
        if request.method != "POST" or not path.endswith("/chat/completions"):
            return _error(404, f"mock provider has no {request.method} {path}", "not_found")
        try:
            body = orjson.loads(await request.aread())
        except orjson.JSONDecodeError:
            return _error(400, "mock provider: body is not JSON", "invalid_json")
        if not isinstance(body, dict):
            return _error(400, "mock provider: body must be a JSON object", "invalid_json")
        answer = _Answer(body, self._words, self.options)
        if body.get("stream"):
            usage = isinstance(body.get("stream_options"), dict) and body["stream_options"].get(
                "include_usage"
            )
            return httpx.Response(
                200,
                headers={"content-type": "text/event-stream"},
                stream=_MockStream(answer, self.options.token_delay, bool(usage)),
            )
        return _json(200, answer.completion())


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


class _MockStream(httpx.AsyncByteStream):
    def __init__(self, answer: _Answer, token_delay: float, include_usage: bool) -> None:
        self.answer = answer
        self.token_delay = token_delay
        self.include_usage = include_usage

    async def __aiter__(self) -> AsyncIterator[bytes]:
        answer = self.answer
        yield b"data: " + answer.chunk({"role": "assistant", "content": ""}) + b"\n\n"
        for token in answer.tokens:
            if self.token_delay:
                await asyncio.sleep(self.token_delay)
            yield b"data: " + answer.chunk({"content": token}) + b"\n\n"
        yield b"data: " + answer.chunk({}, "stop") + b"\n\n"
        if self.include_usage:
            yield b"data: " + answer.usage_chunk() + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        return None


def _model_entry(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "gateway-mock"}


def _json(status: int, payload: dict[str, Any]) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(payload), headers={"content-type": "application/json"})


def _error(status: int, message: str, code: str) -> httpx.Response:
    return _json(
        status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    )
