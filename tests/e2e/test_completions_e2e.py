"""`POST /v1/completions` (legacy) through the running gateway with the openai SDK: passed through to a
target that declares it (a raw loopback upstream), JSON and SSE; 404 on a route whose targets do not."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest

from tests.support.harness import running_gateway, write_config
from tests.support.raw_upstream import Upstream, read_head

COMPLETION = {
    "id": "cmpl-up",
    "object": "text_completion",
    "created": 1700000000,
    "model": "davinci-up",
    "choices": [{"index": 0, "text": " world", "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def chunk(text: str, finish: str | None) -> bytes:
    data = {**COMPLETION, "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}
    data.pop("usage")
    return b"data: " + json.dumps(data).encode() + b"\n\n"


STREAM = chunk(" wor", None) + chunk("ld", "stop") + b"data: [DONE]\n\n"


async def test_completions_pass_through(tmp_path: Path) -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_head(reader)
        received.append(request)
        streamed = b'"stream":true' in request.replace(b" ", b"")
        body = STREAM if streamed else json.dumps(COMPLETION).encode()
        kind = b"text/event-stream" if streamed else b"application/json"
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (kind, len(body)) + body
        )
        await writer.drain()

    async with Upstream(handler) as upstream:
        base = upstream.url.removesuffix("/chat/completions")
        routes = f"""\
providers:
  legacy:
    type: openai
    base_url: {base}
    api_key: ${{SIM_API_KEY:-sim-key}}
    apis: {{chat: true, completions: true}}
    health_check: {{enabled: false}}
  mock: {{type: mock}}
routes:
  davinci-up:
    targets: [{{provider: legacy}}]
  mock:
    targets: [{{provider: mock}}]
"""
        with running_gateway(write_config(tmp_path, routes)) as gateway:
            async with openai.AsyncOpenAI(
                base_url=f"{gateway.base_url}/v1", api_key="x", max_retries=0, timeout=10
            ) as client:
                done = await client.completions.create(model="davinci-up", prompt="hello")
                assert done.choices[0].text == " world"
                assert received[-1].startswith(b"POST /v1/completions HTTP/1.1")
                assert json.loads(received[-1].partition(b"\r\n\r\n")[2])["prompt"] == "hello"
                pieces = [c.choices[0].text async for c in await client.completions.create(
                    model="davinci-up", prompt="hello", stream=True)]  # fmt: skip
                assert "".join(pieces) == " world"
                with pytest.raises(openai.NotFoundError, match="completions API"):
                    await client.completions.create(model="mock", prompt="hello")
                with pytest.raises(openai.BadRequestError):
                    await client.post("/completions", body={"model": "davinci-up"}, cast_to=object)
