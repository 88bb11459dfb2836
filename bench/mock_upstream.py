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

Nothing is built per request beyond the stream events themselves (bench/mock_streams.py; a Responses
stream's closing events, which carry the whole text, are built at its end): the non-streaming answers
are prebuilt byte strings. Run: `python -m bench.mock_upstream --port 8001`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from dataclasses import dataclass
from typing import cast

import httptools
import uvloop

from bench.mock_streams import (
    CHAT_STREAM,
    COMPLETION,
    MESSAGE,
    MESSAGES_STREAM,
    MODELS,
    RESPONSE,
    RESPONSES_STREAM,
    StreamFormat,
)

PARAMS = re.compile(rb"bench:tokens=(\d+),delay_ms=([0-9.]+)")
STREAM_TRUE = re.compile(rb'"stream"\s*:\s*true')
INCLUDE_USAGE = re.compile(rb'"include_usage"\s*:\s*true')


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
    fault_every: int = 0  # every Nth API request gets a fault (0: never), in turn one of FAULTS


# The faults `--fault-every` injects, in turn: an overload answer, a connection dropped before the head,
# and one cut mid-body (a stream after a few events, a JSON answer halfway).
FAULTS = ("status_503", "drop", "cut")
OVERLOADED = _answer(
    b"503 Service Unavailable",
    b'{"error":{"message":"injected overload","type":"server_error","code":"overloaded"}}',
    False,
)


class FaultCounter:
    """Shared by every connection of one server: which request gets which fault."""

    __slots__ = ("every", "requests")

    def __init__(self, every: int) -> None:
        self.every = every
        self.requests = 0

    def next_fault(self) -> str | None:
        self.requests += 1
        if not self.every or self.requests % self.every:
            return None
        return FAULTS[(self.requests // self.every) % len(FAULTS)]


class MockConnection(asyncio.Protocol):
    """One client connection: parse requests, answer, stream on a timer. One request at a time."""

    def __init__(self, options: MockOptions, faults: FaultCounter) -> None:
        self.options = options
        self.faults = faults
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
            fault = self.faults.next_fault()
            if fault is not None:
                self.inject(fault, body, stream, ANSWERS[answer, False])
                return
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

    def inject(self, fault: str, body: bytes, wire: StreamFormat, answer: bytes) -> None:
        """Answer with `fault` and close the connection."""
        transport = self.transport
        assert transport is not None
        if fault == "status_503":
            transport.write(OVERLOADED)
        elif fault == "cut":
            if STREAM_TRUE.search(body):
                transport.write(STREAM_HEAD + wire.head + wire.token(0, time.monotonic_ns()))
            else:
                transport.write(answer[: len(answer) - 40])  # the head and part of the body
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
    faults = FaultCounter(options.fault_every)
    server = await loop.create_server(lambda: MockConnection(options, faults), host, port, backlog=4096)
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
    parser.add_argument(
        "--fault-every", type=int, default=0, help="every Nth request gets a fault (503, drop, cut)"
    )
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, MockOptions(args.tokens, args.delay_ms, args.fault_every)))


if __name__ == "__main__":
    main()
