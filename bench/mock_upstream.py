"""A fast OpenAI- and Anthropic-compatible mock upstream for benchmarks: raw asyncio on uvloop, httptools.

`POST .../chat/completions` answers a fixed chat completion, or with `"stream": true` a stream of N
token events D ms apart. `POST .../v1/messages` does the same in Anthropic's Messages API: a fixed
message, or Anthropic's named SSE events (`message_start`, `content_block_start`, `ping`, N
`content_block_delta` text deltas D ms apart, `content_block_stop`, `message_delta` with usage,
`message_stop`). `POST .../responses` does it in OpenAI's Responses API: a fixed response, or its named
events (`response.created`, `response.in_progress`, `response.output_item.added`,
`response.content_part.added`, N `response.output_text.delta` D ms apart, `response.output_text.done`,
`response.content_part.done`, `response.output_item.done`, `response.completed` with usage; the `.done`
events carry the whole text, every event its `sequence_number`). Every token event carries the time it
was written (`time.monotonic_ns()`, the system-wide CLOCK_MONOTONIC, so another process can compare)
inside its text (chat: `content`, Messages: the `text_delta`'s `text`, Responses: the `delta`) as
`t<ns> `: the text is the one field every proxy and translator passes through unchanged, so the stream
client can measure the delay each hop adds per chunk. N and D come from
the last user message (`bench:tokens=20,delay_ms=20`) for the same reason: proxies forward messages
verbatim, while unknown body fields may be dropped.

Nothing is built per request beyond the stream events themselves: the non-streaming answers are
prebuilt byte strings. Run: `python -m bench.mock_upstream --port 8001`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools
import orjson
import uvloop

PARAMS = re.compile(rb"bench:tokens=(\d+),delay_ms=([0-9.]+)")
STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')
INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')

COMPLETION = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"This is a benchmark answer from '
    b'the mock upstream."},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}'
)
MESSAGE = (
    b'{"id":"msg_bench","type":"message","role":"assistant","model":"bench","content":[{"type":"text",'
    b'"text":"This is a benchmark answer from the mock upstream."}],"stop_reason":"end_turn",'
    b'"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":9}}'
)
# A Response as OpenAI writes one, its fields in OpenAI's order (`response_object` fills in the blanks).
RESPONSE_FIELDS: dict[str, object] = {
    "id": "resp_bench",
    "object": "response",
    "created_at": 1700000000,
    "status": "",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "bench",
    "output": [],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": False,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": None,
    "user": None,
    "metadata": {},
}
RESPONSE_TEXT = "This is a benchmark answer from the mock upstream."


def response_object(status: str, output: list[object], usage: object) -> dict[str, object]:
    return {**RESPONSE_FIELDS, "status": status, "output": output, "usage": usage}


def message_item(status: str, parts: list[object]) -> dict[str, object]:
    return {"id": "msg_bench", "type": "message", "status": status, "role": "assistant", "content": parts}


def text_part(text: str) -> dict[str, object]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def responses_usage(output_tokens: int) -> dict[str, object]:
    return {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 12 + output_tokens,
    }


RESPONSE = orjson.dumps(
    response_object("completed", [message_item("completed", [text_part(RESPONSE_TEXT)])], responses_usage(9))
)
MODELS = b'{"object":"list","data":[{"id":"bench","object":"model","created":1700000000,"owned_by":"bench"}]}'


def _answer(status: bytes, body: bytes, keep_alive: bool) -> bytes:
    connection = b"keep-alive" if keep_alive else b"close"
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: "
        + connection
        + b"\r\n\r\n"
        + body
    )


ANSWERS = {
    (kind, keep_alive): _answer(status, body, keep_alive)
    for kind, status, body in (
        ("completion", b"200 OK", COMPLETION),
        ("message", b"200 OK", MESSAGE),
        ("response", b"200 OK", RESPONSE),
        ("models", b"200 OK", MODELS),
        ("not_found", b"404 Not Found", b'{"error":{"message":"not found","type":"invalid_request_error"}}'),
    )
    for keep_alive in (True, False)
}
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n"
)
CHUNK_PREFIX = (
    b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench",'
)
FINAL_EVENT = CHUNK_PREFIX + b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
USAGE_EVENT = (
    CHUNK_PREFIX + b'"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}'
)


def _chunk(event: bytes) -> bytes:
    """One SSE event as one HTTP/1.1 chunk."""
    data = b"data: " + event + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def token_event(index: int, stamp_ns: int) -> bytes:
    role = b'"role":"assistant",' if index == 0 else b""
    return _chunk(
        CHUNK_PREFIX
        + b'"choices":[{"index":0,"delta":{'
        + role
        + b'"content":"t%d "},"finish_reason":null}]}' % stamp_ns
    )


def _named_chunk(name: bytes, data: bytes) -> bytes:
    """One named SSE event (Anthropic's `event:` + `data:` lines) as one HTTP/1.1 chunk."""
    event = b"event: " + name + b"\ndata: " + data + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


# Anthropic's stream opens in the order of its docs: message_start, the text block, one ping. The closing
# events go out as one write, like the chat stream's tail (finish chunk, usage, [DONE]).
MESSAGES_HEAD = (
    _named_chunk(
        b"message_start",
        b'{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant",'
        b'"model":"bench","content":[],"stop_reason":null,"stop_sequence":null,'
        b'"usage":{"input_tokens":12,"output_tokens":1}}}',
    )
    + _named_chunk(
        b"content_block_start",
        b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    )
    + _named_chunk(b"ping", b'{"type":"ping"}')
)


def text_delta_event(index: int, stamp_ns: int) -> bytes:
    """One Messages `content_block_delta` carrying the send stamp in its text (`index` is unused)."""
    return _named_chunk(
        b"content_block_delta",
        b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"t%d "}}' % stamp_ns,
    )


def messages_tail(stamps: list[int], include_usage: bool) -> bytes:
    tokens = len(stamps)
    return (
        _named_chunk(b"content_block_stop", b'{"type":"content_block_stop","index":0}')
        + _named_chunk(
            b"message_delta",
            b'{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
            b'"usage":{"output_tokens":%d}}' % tokens,
        )
        + _named_chunk(b"message_stop", b'{"type":"message_stop"}')
        + b"0\r\n\r\n"
    )


STREAM_TAIL = _chunk(FINAL_EVENT)
USAGE_TAIL = _chunk(USAGE_EVENT)
DONE_TAIL = _chunk(b"[DONE]") + b"0\r\n\r\n"


TokenEvent = Callable[[int, int], bytes]  # (index, send stamp in ns) -> one chunked SSE event


def chat_tail(stamps: list[int], include_usage: bool) -> bytes:
    return STREAM_TAIL + (USAGE_TAIL if include_usage else b"") + DONE_TAIL


def _response_event(name: str, sequence: int, fields: dict[str, object]) -> bytes:
    """One Responses event: named, its `type` and `sequence_number` in the data, as OpenAI sends them."""
    data = orjson.dumps({"type": name, **fields, "sequence_number": sequence})
    return _named_chunk(name.encode(), data)


WHERE = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
RESPONSES_HEAD = (
    _response_event("response.created", 0, {"response": response_object("in_progress", [], None)})
    + _response_event("response.in_progress", 1, {"response": response_object("in_progress", [], None)})
    + _response_event(
        "response.output_item.added", 2, {"output_index": 0, "item": message_item("in_progress", [])}
    )
    + _response_event("response.content_part.added", 3, {**WHERE, "part": text_part("")})
)
RESPONSES_OPENING = 4  # events before the first delta


def output_text_delta_event(index: int, stamp_ns: int) -> bytes:
    """One `response.output_text.delta` carrying the send stamp in its `delta`."""
    return _named_chunk(
        b"response.output_text.delta",
        b'{"type":"response.output_text.delta","item_id":"msg_bench","output_index":0,"content_index":0,'
        b'"delta":"t%d ","logprobs":[],"sequence_number":%d}' % (stamp_ns, RESPONSES_OPENING + index),
    )


def responses_tail(stamps: list[int], include_usage: bool) -> bytes:
    """The closing events, each `.done` with the whole text the deltas sent."""
    text = "".join(f"t{stamp} " for stamp in stamps)
    sequence = RESPONSES_OPENING + len(stamps)
    item = message_item("completed", [text_part(text)])
    response = response_object("completed", [item], responses_usage(len(stamps)))
    return (
        _response_event("response.output_text.done", sequence, {**WHERE, "text": text, "logprobs": []})
        + _response_event("response.content_part.done", sequence + 1, {**WHERE, "part": text_part(text)})
        + _response_event("response.output_item.done", sequence + 2, {"output_index": 0, "item": item})
        + _response_event("response.completed", sequence + 3, {"response": response})
        + b"0\r\n\r\n"
    )


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """What a stream of one API looks like: its opening events, one token event, its closing events."""

    head: bytes
    token: TokenEvent
    # (the token events' send stamps, include_usage) -> the closing events and the last chunk
    tail: Callable[[list[int], bool], bytes]


CHAT_STREAM = StreamFormat(b"", token_event, chat_tail)
MESSAGES_STREAM = StreamFormat(MESSAGES_HEAD, text_delta_event, messages_tail)
RESPONSES_STREAM = StreamFormat(RESPONSES_HEAD, output_text_delta_event, responses_tail)

# The streaming APIs: (the path's ending, its stream, the key of its non-streaming answer in ANSWERS).
APIS = (
    (b"/chat/completions", CHAT_STREAM, "completion"),
    (b"/v1/messages", MESSAGES_STREAM, "message"),
    (b"/responses", RESPONSES_STREAM, "response"),
)


@dataclass(frozen=True, slots=True)
class MockOptions:
    tokens: int = 20  # when the request names none
    delay_ms: float = 0.0


class MockConnection(asyncio.Protocol):
    """One client connection: parse requests, answer, stream on a timer. One request at a time."""

    def __init__(self, options: MockOptions) -> None:
        self.options = options
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.timer: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None:
            return
        keep_alive = self.parser.should_keep_alive()
        path = self.url.split(b"?", 1)[0]
        method = self.parser.get_method()
        api = next((api for api in APIS if method == b"POST" and path.endswith(api[0])), None)
        if api is not None:
            _, stream, answer = api
            body = b"".join(self.body)
            if STREAM_TRUE.search(body):
                self.start_stream(body, stream)
                return
            transport.write(ANSWERS[answer, keep_alive])
        elif method == b"GET" and path.endswith(b"/models"):
            transport.write(ANSWERS["models", keep_alive])
        else:
            transport.write(ANSWERS["not_found", keep_alive])
        if not keep_alive:
            transport.close()

    def start_stream(self, body: bytes, wire: StreamFormat) -> None:
        tokens, delay_ms = self.options.tokens, self.options.delay_ms
        found = PARAMS.search(body)
        if found:
            tokens, delay_ms = int(found.group(1)), float(found.group(2))
        usage = INCLUDE_USAGE.search(body) is not None
        assert self.transport is not None
        self.transport.write(STREAM_HEAD + wire.head)
        stamps: list[int] = []
        if delay_ms <= 0:
            for index in range(tokens):
                stamps.append(time.monotonic_ns())
                self.transport.write(wire.token(index, stamps[-1]))
            self.transport.write(wire.tail(stamps, usage))
            return
        # Absolute schedule (start + i * delay), so timer lateness never accumulates into drift.
        self.send_token(0, tokens, self.loop.time(), delay_ms / 1000.0, wire, stamps, usage)

    def send_token(
        self,
        index: int,
        tokens: int,
        start: float,
        delay: float,
        wire: StreamFormat,
        stamps: list[int],
        usage: bool,
    ) -> None:
        self.timer = None
        transport = self.transport
        if transport is None:
            return
        stamps.append(time.monotonic_ns())
        transport.write(wire.token(index, stamps[-1]))
        if index + 1 < tokens:
            self.timer = self.loop.call_at(
                start + (index + 1) * delay,
                self.send_token,
                index + 1,
                tokens,
                start,
                delay,
                wire,
                stamps,
                usage,
            )
        else:
            transport.write(wire.tail(stamps, usage))


async def serve(host: str, port: int, options: MockOptions, ready: asyncio.Event | None = None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: MockConnection(options), host, port, backlog=4096)
    if ready is not None:
        ready.set()
    print(f"mock upstream listening on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="fast OpenAI- and Anthropic-compatible mock upstream")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--tokens", type=int, default=20, help="stream tokens when a request names none")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="ms between tokens when none named")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, MockOptions(args.tokens, args.delay_ms)))


if __name__ == "__main__":
    main()
