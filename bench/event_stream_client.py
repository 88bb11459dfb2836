"""A stream client that speaks three wire formats: OpenAI chat SSE, Anthropic Messages and OpenAI Responses
named SSE events.

asyncio on uvloop with httptools, one keep-alive connection per worker, one stream at a time on it. Every
response is read to its last byte and split into SSE events; each stream is then checked against what it
should be (status 200, all N token events, its terminal event: `[DONE]` for chat, `message_stop` for
Messages, `response.completed` for Responses, no error event), so a benchmark never reports figures of
failing streams. Token events are the ones carrying the mock's send stamp (`t<ns> ` in `content`, in a
`text_delta`'s `text` or in an `output_text.delta`'s `delta`), whichever translation they went through;
their delay from the mock's write to this client's read is kept too. Responses events are parsed as well
(`WireFormat.parsed`): each one's `type` must be its event name, its `sequence_number` the next one, the
first `response.created`, the last `response.completed` with usage, nothing after it.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import httptools
import orjson

Wire = Literal["chat", "messages", "responses"]


@dataclass(frozen=True, slots=True)
class WireFormat:
    """What a stream of one API looks like to the client."""

    path: str
    stamp: re.Pattern[bytes]  # a token event: its text field holding the mock's send stamp
    terminal: bytes  # how the event that ends a good stream starts
    error: re.Pattern[bytes]  # an error event
    parsed: bool = False  # every event's JSON checked (`StreamCheck.parse`)
    headers: tuple[str, ...] = ()


WIRES: dict[Wire, WireFormat] = {
    "chat": WireFormat(
        "/v1/chat/completions",
        re.compile(rb'"content"\s*:\s*"t(\d+) '),
        b"data: [DONE]",
        re.compile(rb'"error"'),
    ),
    "messages": WireFormat(
        "/v1/messages",
        re.compile(rb'"text"\s*:\s*"t(\d+) '),
        b"event: message_stop",
        re.compile(rb'"error"'),
        headers=("anthropic-version: 2023-06-01",),
    ),
    # Responses objects carry `"error": null`, and the `.done` events the whole text: names decide.
    "responses": WireFormat(
        "/v1/responses",
        re.compile(rb'^event: response\.output_text\.delta\n.*"delta"\s*:\s*"t(\d+) ', re.DOTALL),
        b"event: response.completed\n",
        re.compile(rb"^event: (?:error|response\.failed|response\.incomplete)\n"),
        parsed=True,
    ),
}


def prompt(tokens: int, delay_ms: float) -> str:
    """The last user message the mock reads N and D from (bench/mock_upstream.py `PARAMS`)."""
    return f"bench:tokens={tokens},delay_ms={delay_ms:g} Say something for the benchmark."


def request_body(wire: Wire, model: str, tokens: int, delay_ms: float) -> bytes:
    message = {"role": "user", "content": prompt(tokens, delay_ms)}
    body: dict[str, Any] = {"model": model, "stream": True}
    if wire == "responses":
        body["input"] = [message]
    else:
        body["messages"] = [message]
    if wire == "messages":
        body["max_tokens"] = 1024  # required by the Messages API
    return orjson.dumps(body)


def http_request(wire: Wire, host: str, port: int, body: bytes) -> bytes:
    lines = [
        f"POST {WIRES[wire].path} HTTP/1.1",
        f"host: {host}:{port}",
        "content-type: application/json",
        "accept: text/event-stream",
        f"content-length: {len(body)}",
        *WIRES[wire].headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(slots=True)
class StreamCheck:
    """One response body split into SSE events, counted by kind."""

    wire: Wire
    delays_ns: list[int]
    buffer: bytes = b""
    events: int = 0
    tokens: int = 0
    done: bool = False
    error_events: int = 0
    broken: str = ""  # the first way a parsed stream was not what its API says

    def feed(self, data: bytes, received_ns: int) -> None:
        wire = WIRES[self.wire]
        buffer = self.buffer + data if self.buffer else data
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            event = buffer[start:end]
            start = end + 2
            if wire.parsed:
                self.parse(event)
            self.events += 1
            found = wire.stamp.search(event)
            if found is not None:
                self.delays_ns.append(received_ns - int(found.group(1)))
                self.tokens += 1
            elif event.startswith(wire.terminal):
                self.done = True
            elif wire.error.search(event):
                self.error_events += 1
        self.buffer = buffer[start:]

    def parse(self, event: bytes) -> None:
        """One Responses event against the API's rules (counted before `feed` counts it)."""
        if self.broken:
            return
        name, _, data = event.partition(b"\n")
        if not name.startswith(b"event: ") or not data.startswith(b"data: "):
            self.broken = f"event {self.events}: not a named event"
            return
        try:
            payload = orjson.loads(data[6:])
        except orjson.JSONDecodeError:
            self.broken = f"event {self.events}: data is not JSON"
            return
        kind = name[7:].decode()
        if not isinstance(payload, dict) or payload.get("type") != kind:
            self.broken = f"event {self.events} ({kind}): its type is not its name"
        elif payload.get("sequence_number") != self.events:
            self.broken = f"event {self.events} ({kind}): sequence_number {payload.get('sequence_number')}"
        elif self.events == 0 and kind != "response.created":
            self.broken = f"the stream opened with {kind}"
        elif self.done:
            self.broken = f"{kind} after response.completed"
        elif kind == "response.completed":
            response = payload.get("response")
            if not isinstance(response, dict) or not isinstance(response.get("usage"), dict):
                self.broken = "response.completed without usage"


class StreamConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.received_ns = 0
        self.check: StreamCheck | None = None
        self.status = 0
        self.keep_alive = True
        self.response: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.response is not None and not self.response.done():
            self.response.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.received_ns = time.monotonic_ns()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.response is not None and not self.response.done():
                self.response.set_exception(ConnectionError(f"bad response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self.check is not None:
            self.check.feed(body, self.received_ns)

    def on_message_complete(self) -> None:
        if self.response is not None and not self.response.done():
            self.response.set_result(None)

    async def send(self, request: bytes, check: StreamCheck) -> int:
        assert self.transport is not None
        self.check, self.status = check, 0
        self.response = self.loop.create_future()
        self.transport.write(request)
        await self.response
        return self.status


@dataclass(slots=True)
class StreamTally:
    """What a load saw: streams that were right, and every way one was not."""

    tokens_per_stream: int
    streams: int = 0  # complete and correct
    failed: int = 0  # connection errors, non-200, short or errored streams
    events: int = 0  # SSE events received in correct streams (framing events included)
    tokens: int = 0  # token events received in correct streams
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)  # the first few, to show
    delays_ns: list[int] = field(default_factory=list)

    def record(self, status: int, check: StreamCheck) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        problem = ""
        if status != 200:
            problem = f"status {status}"
        elif check.error_events:
            problem = f"{check.error_events} error event(s)"
        elif check.broken:
            problem = check.broken
        elif check.tokens != self.tokens_per_stream:
            problem = f"{check.tokens} of {self.tokens_per_stream} token events"
        elif not check.done:
            problem = "no terminal event"
        if problem:
            self.fail(problem)
            return
        self.streams += 1
        self.events += check.events
        self.tokens += check.tokens

    def fail(self, problem: str) -> None:
        self.failed += 1
        if len(self.failures) < 5:
            self.failures.append(problem)


async def run_worker(
    host: str, port: int, wire: Wire, request: bytes, streams: int, tally: StreamTally
) -> None:
    """`streams` streams one after another on one keep-alive connection (reconnecting when it closes)."""
    loop = asyncio.get_running_loop()
    connection: StreamConnection | None = None
    try:
        for _ in range(streams):
            check = StreamCheck(wire, tally.delays_ns)
            try:
                if connection is None or connection.transport is None:
                    _, connection = await loop.create_connection(StreamConnection, host, port)
                status = await connection.send(request, check)
            except (OSError, ConnectionError) as exc:
                tally.fail(f"{type(exc).__name__}: {exc}")
                connection = None
                continue
            tally.record(status, check)
            if not connection.keep_alive and connection.transport is not None:
                connection.transport.close()
                connection = None
    finally:
        if connection is not None and connection.transport is not None:
            connection.transport.close()


async def run_streams(
    host: str,
    port: int,
    wire: Wire,
    model: str,
    *,
    concurrency: int,
    streams_per_worker: int,
    tokens: int,
    delay_ms: float,
    spread_s: float = 0.0,
) -> StreamTally:
    """`concurrency` workers, each running `streams_per_worker` streams back to back; starts spread evenly
    over `spread_s`, so the streams' events do not all tick in the same instant."""
    request = http_request(wire, host, port, request_body(wire, model, tokens, delay_ms))
    tally = StreamTally(tokens)
    workers = []
    for _ in range(concurrency):
        workers.append(asyncio.create_task(run_worker(host, port, wire, request, streams_per_worker, tally)))
        if spread_s > 0:
            await asyncio.sleep(spread_s / concurrency)
    await asyncio.gather(*workers)
    return tally
