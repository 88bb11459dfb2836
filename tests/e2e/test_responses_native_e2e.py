"""`/v1/responses` passed through to an upstream that speaks Responses (a raw loopback server standing in
for OpenAI): the body bytes and the OpenAI-Beta header arrive unchanged, the answer and the stream's events
come back as the upstream wrote them, and the openai SDK builds its final response from them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import openai

from tests.support.harness import running_gateway, write_config
from tests.support.raw_upstream import Upstream, read_head

MESSAGE = {
    "type": "message",
    "id": "msg_up_1",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "native hello", "annotations": []}],
}
RESPONSE = {
    "id": "resp_up_1",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "model": "gpt-up",
    "output": [MESSAGE],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {
        "input_tokens": 4,
        "input_tokens_details": {"cached_tokens": 1},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 6,
    },
}
OPENED = {**MESSAGE, "status": "in_progress", "content": []}
IN_PROGRESS = {**RESPONSE, "status": "in_progress", "output": [], "usage": None}


def sse(events: list[tuple[str, dict[str, object]]]) -> bytes:
    return b"".join(
        b"event: %s\ndata: %s\n\n"
        % (name.encode(), json.dumps({"type": name, "sequence_number": n, **data}).encode())
        for n, (name, data) in enumerate(events)
    )


STREAM = sse(
    [
        ("response.created", {"response": IN_PROGRESS}),
        ("response.output_item.added", {"output_index": 0, "item": OPENED}),
        ("response.content_part.added", {"item_id": "msg_up_1", "output_index": 0, "content_index": 0,
                                         "part": {"type": "output_text", "text": "", "annotations": []}}),
        ("response.output_text.delta", {"item_id": "msg_up_1", "output_index": 0, "content_index": 0,
                                        "delta": "native hello", "logprobs": []}),
        ("response.completed", {"response": RESPONSE}),
    ]
)  # fmt: skip


async def test_pass_through(tmp_path: Path) -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_head(reader)
        received.append(request)
        streamed = b'"stream": true' in request or b'"stream":true' in request
        body = STREAM if streamed else json.dumps(RESPONSE).encode()
        kind = b"text/event-stream" if streamed else b"application/json"
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (kind, len(body)) + body
        )
        await writer.drain()

    async with Upstream(handler) as upstream:
        base = upstream.url.removesuffix("/chat/completions")
        routes = f"""\
providers:
  oai:
    type: openai
    base_url: {base}
    api_key: ${{SIM_API_KEY:-sim-key}}
    apis: {{chat: true, responses: true}}
    health_check: {{enabled: false}}
routes:
  gpt-up:
    targets: [{{provider: oai}}]
"""
        with running_gateway(write_config(tmp_path, routes)) as gateway:
            raw = b'{"model":"gpt-up",   "input": "hi", "store": false}'
            async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as http:
                answer = await http.post(
                    "/v1/responses",
                    content=raw,
                    headers={"content-type": "application/json", "openai-beta": "x=1"},
                )
            assert answer.status_code == 200, answer.text
            assert answer.json() == RESPONSE
            head, _, sent_body = received[-1].partition(b"\r\n\r\n")
            assert head.startswith(b"POST /v1/responses HTTP/1.1")
            assert sent_body == raw  # byte for byte
            assert b"\r\nopenai-beta: x=1" in head.lower()

            async with openai.AsyncOpenAI(
                base_url=f"{gateway.base_url}/v1", api_key="x", max_retries=0, timeout=10
            ) as client:
                async with client.responses.stream(model="gpt-up", input="hi") as stream:
                    kinds = [event.type async for event in stream]
                    final = await stream.get_final_response()
                assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
                assert kinds.count("response.output_text.delta") == 1
                assert final.output_text == "native hello"
                assert final.usage is not None and final.usage.total_tokens == 6
