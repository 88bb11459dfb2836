"""The stream client of `bench/stream_bench.py`: asyncio on uvloop, httptools, one stream per connection
at a time. Every socket read is stamped on arrival (`time.monotonic_ns()`); each token event in it gives
one per-chunk delay: arrival minus the send stamp the mock upstream wrote into the event's content
(`"content":"t<ns> "`, CLOCK_MONOTONIC, comparable across processes).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import httptools

STAMP = re.compile(rb'"content":"t(\d+) ')
MODEL = "bench"


@dataclass(slots=True)
class Stream:
    """What the client saw of one streamed response."""

    sent_ns: int
    status: int = 0
    first_token_ns: int = 0
    tokens: int = 0
    bytes: int = 0
    delays_ns: list[int] = field(default_factory=list)


class StreamConnection(asyncio.Protocol):
    """One keep-alive connection; one stream at a time. Splits the body into events as reads arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.now_ns = 0
        self.buffer = b""
        self.stream: Stream | None = None
        self.finished: asyncio.Future[None] | None = None
        self.first_token: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for future in (self.finished, self.first_token):
            if future is not None and not future.done():
                future.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.now_ns = time.monotonic_ns()
        self.parser.feed_data(data)

    def on_headers_complete(self) -> None:
        assert self.stream is not None
        self.stream.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        stream = self.stream
        assert stream is not None
        stream.bytes += len(body)
        buffer = self.buffer + body if self.buffer else body
        start = 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            found = STAMP.search(buffer, start, end)
            start = end + 2
            if found is None:
                continue
            stream.delays_ns.append(self.now_ns - int(found.group(1)))
            stream.tokens += 1
            if stream.tokens == 1:
                stream.first_token_ns = self.now_ns
                if self.first_token is not None and not self.first_token.done():
                    self.first_token.set_result(None)
        self.buffer = buffer[start:]

    def on_message_complete(self) -> None:
        if self.finished is not None and not self.finished.done():
            self.finished.set_result(None)

    def start(self, request: bytes) -> Stream:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        self.stream, self.buffer = Stream(time.monotonic_ns()), b""
        self.finished, self.first_token = loop.create_future(), loop.create_future()
        self.transport.write(request)
        return self.stream

    async def run(self, request: bytes) -> Stream:
        stream = self.start(request)
        assert self.finished is not None
        await self.finished
        return stream

    def close(self) -> None:
        for future in (self.finished, self.first_token):
            if future is not None and not future.done():
                future.cancel()  # nobody waits any more (an idle stream being closed)
        if self.transport is not None:
            self.transport.close()


def chat_request(port: int, path: str, tokens: int, delay_ms: float) -> bytes:
    body = json.dumps(
        {
            "model": MODEL,
            "stream": True,
            "messages": [{"role": "user", "content": f"bench:tokens={tokens},delay_ms={delay_ms}"}],
        }
    ).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def connect(port: int) -> StreamConnection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(StreamConnection, "127.0.0.1", port)
    return protocol


Probe = Callable[[], tuple[float, float]]  # (seconds on CPU, seconds runnable but waiting for a CPU)


async def load(
    port: int,
    path: str,
    *,
    concurrency: int,
    seconds: float,
    tokens: int,
    delay_ms: float,
    probe: Probe | None = None,
) -> dict:
    """`concurrency` connections streaming back to back for `seconds` (starts spread over one token).

    With `probe` (the proxy's scheduler figures), the result also says how much CPU the proxy used per
    event and how long it waited for a CPU that other processes held: the noise in the delays."""
    request = chat_request(port, path, tokens, delay_ms)
    loop = asyncio.get_running_loop()
    streams: list[Stream] = []
    spread = max(delay_ms, 1.0) / 1000

    async def worker(index: int, deadline: float) -> None:
        await asyncio.sleep(spread * index / concurrency)
        connection = await connect(port)
        try:
            while loop.time() < deadline:
                streams.append(await connection.run(request))
        finally:
            connection.close()

    warm_until = loop.time() + min(1.0, seconds / 3)
    await asyncio.gather(*(worker(index, warm_until) for index in range(concurrency)))
    streams.clear()
    before = probe() if probe is not None else (0.0, 0.0)
    started = loop.time()
    await asyncio.gather(*(worker(index, started + seconds) for index in range(concurrency)))
    elapsed = loop.time() - started
    result = summarise(streams, elapsed)
    if probe is not None:
        after = probe()
        events = sum(stream.tokens for stream in streams) or 1
        result["proxy_cpu_us_per_event"] = round((after[0] - before[0]) / events * 1e6, 1)
        result["proxy_cpu_pct"] = round((after[0] - before[0]) / elapsed * 100, 1)
        result["proxy_wait_pct"] = round((after[1] - before[1]) / elapsed * 100, 1)
    return result


def summarise(streams: list[Stream], elapsed: float) -> dict[str, Any]:
    delays = sorted(delay for stream in streams for delay in stream.delays_ns)
    ttfb = sorted(stream.first_token_ns - stream.sent_ns for stream in streams if stream.tokens)
    bad = sum(1 for stream in streams if stream.status != 200)
    events = sum(stream.tokens for stream in streams)
    return {
        "streams": len(streams),
        "failed": bad,
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(events / elapsed, 1),
        "streams_per_s": round(len(streams) / elapsed, 1),
        "mb_per_s": round(sum(stream.bytes for stream in streams) / elapsed / 1e6, 3),
        "delay_ms": percentiles(delays),
        "ttfb_ms": percentiles(ttfb),
    }


def percentiles(values_ns: list[int]) -> dict[str, float | None]:
    if not values_ns:
        return {"p50": None, "p90": None, "p99": None, "max": None}

    def at(fraction: float) -> float:
        return round(values_ns[min(len(values_ns) - 1, int(fraction * len(values_ns)))] / 1e6, 3)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(values_ns[-1] / 1e6, 3)}


async def idle_streams(port: int, path: str, count: int, rss: Callable[[], float]) -> dict[str, Any]:
    """Open `count` streams that get one token, then nothing for a minute; RSS before and with them open."""
    before = rss()
    request = chat_request(port, path, 2, 60_000)
    connections = []
    try:
        for batch in range(0, count, 100):
            opened = await asyncio.gather(*(connect(port) for _ in range(min(100, count - batch))))
            for connection in opened:
                connection.start(request)
            connections.extend(opened)
        firsts = [connection.first_token for connection in connections]
        await asyncio.wait_for(asyncio.gather(*cast(list, firsts)), 60)
        await asyncio.sleep(1.0)
        samples = []
        for _ in range(5):
            samples.append(rss())
            await asyncio.sleep(0.2)
        during = max(samples)
    finally:
        for connection in connections:
            connection.close()
    await asyncio.sleep(1.0)
    return {
        "streams": count,
        "rss_before_mb": round(before, 1),
        "rss_open_mb": round(during, 1),
        "rss_after_mb": round(rss(), 1),
        "kb_per_stream": round((during - before) * 1024 / count, 1),
    }
