"""Asyncio load clients on uvloop + httptools: non-streaming requests, and streams with per-chunk timing.

The stream client stamps the arrival of every TCP read (`time.monotonic_ns()`) and, for each token event
in it, subtracts the send time the mock upstream wrote into the event's content: that is the delay every
hop between the mock and the client added to that chunk. Run against the mock directly, it gives the
floor (the client's and the loopback's own share); against a proxy, the difference is the proxy's.

Runs as its own process (pinned next to the mock by the runner) and prints one JSON object:
`python -m bench.load_client stream --url http://127.0.0.1:8000/v1/chat/completions -c 50 -d 5`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop

STAMP = re.compile(rb'"content"\s*:\s*"t(\d+) ')


@dataclass(slots=True)
class StreamSink:
    """Splits one response body into SSE events and times the stamped ones."""

    delays_ns: list[int]
    buffer: bytes = b""
    first_token_ns: int = 0
    tokens: int = 0
    done: bool = False

    def feed(self, data: bytes, received_ns: int) -> None:
        buffer = self.buffer + data if self.buffer else data
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            event = buffer[start:end]
            start = end + 2
            found = STAMP.search(event)
            if found is not None:
                self.delays_ns.append(received_ns - int(found.group(1)))
                if not self.tokens:
                    self.first_token_ns = received_ns
                self.tokens += 1
            elif b"[DONE]" in event:
                self.done = True
        self.buffer = buffer[start:]


class ClientConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.received_ns = 0
        self.sink: StreamSink | None = None
        self.status = 0
        self.body_bytes = 0
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
        self.body_bytes += len(body)
        if self.sink is not None:
            self.sink.feed(body, self.received_ns)

    def on_message_complete(self) -> None:
        if self.response is not None and not self.response.done():
            self.response.set_result(None)

    async def send(self, request: bytes, sink: StreamSink | None = None) -> int:
        """Write one request and wait for its whole response; returns the status code."""
        assert self.transport is not None
        self.sink, self.status, self.body_bytes = sink, 0, 0
        self.response = self.loop.create_future()
        self.transport.write(request)
        await self.response
        return self.status

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    path: str
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_url(cls, url: str, headers: list[str]) -> Target:
        parts = urlsplit(url)
        pairs = tuple((name.strip(), value.strip()) for name, _, value in (h.partition(":") for h in headers))
        return cls(parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/", pairs)

    def request(self, body: bytes) -> bytes:
        lines = [
            f"POST {self.path} HTTP/1.1",
            f"host: {self.host}:{self.port}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def connect(self) -> ClientConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(ClientConnection, self.host, self.port)
        return protocol


def chat_body(
    model: str, *, stream: bool, tokens: int = 20, delay_ms: float = 0.0, prompt_bytes: int = 0
) -> bytes:
    """`prompt_bytes`: filler text added to the prompt (a real prompt's size; the mock ignores it)."""
    prompt = f"bench:tokens={tokens},delay_ms={delay_ms:g} Say something for the benchmark."
    if prompt_bytes > 0:
        prompt += (" Some context for the question." * (prompt_bytes // 31 + 1))[:prompt_bytes]
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return orjson.dumps(body)


def percentiles_ms(values_ns: list[int]) -> dict[str, float]:
    if not values_ns:
        return {}
    ordered = sorted(values_ns)
    last = len(ordered) - 1

    def at(q: float) -> float:
        return ordered[min(last, round(q * last))] / 1e6

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "p999": at(0.999),
        "max": ordered[-1] / 1e6,
        "mean": sum(ordered) / len(ordered) / 1e6,
    }


@dataclass(slots=True)
class Tally:
    latencies_ns: list[int] = field(default_factory=list)
    ttfb_ns: list[int] = field(default_factory=list)
    delays_ns: list[int] = field(default_factory=list)
    completed: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    open_now: int = 0
    open_peak: int = 0
    short_streams: int = 0  # completed without every token or without [DONE]


async def run_worker(
    target: Target, request: bytes, tally: Tally, deadline: float, *, stream: bool, tokens: int, once: bool
) -> None:
    """One connection sending requests back to back until the deadline (or once)."""
    connection: ClientConnection | None = None
    while once or time.monotonic() < deadline:
        try:
            if connection is None or connection.transport is None:
                connection = await target.connect()
            sink = StreamSink(tally.delays_ns) if stream else None
            started = time.monotonic_ns()
            tally.open_now += 1
            tally.open_peak = max(tally.open_peak, tally.open_now)
            try:
                status = await connection.send(request, sink)
            finally:
                tally.open_now -= 1
            finished = time.monotonic_ns()
        except (OSError, ConnectionError):
            tally.errors += 1
            connection = None
            if once:
                break
            await asyncio.sleep(0.01)
            continue
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status != 200:
            tally.errors += 1
        else:
            tally.completed += 1
            tally.latencies_ns.append(finished - started)
            if sink is not None:
                if sink.first_token_ns:
                    tally.ttfb_ns.append(sink.first_token_ns - started)
                if sink.tokens != tokens or not sink.done:
                    tally.short_streams += 1
        if not connection.keep_alive:
            connection.close()
            connection = None
        if once:
            break
    if connection is not None:
        connection.close()


async def run_load(args: argparse.Namespace) -> dict[str, Any]:
    stream = args.mode == "stream"
    target = Target.from_url(args.url, args.header)
    request = target.request(chat_body(args.model, stream=stream, tokens=args.tokens, delay_ms=args.delay_ms))
    tally = Tally()
    if args.warmup > 0:  # open the proxy's pools and import paths before timing
        warm = Tally()
        await run_worker(
            target, request, warm, time.monotonic() + 30, stream=stream, tokens=args.tokens, once=True
        )
    started = time.monotonic()
    deadline = started + args.duration
    workers = []
    for _ in range(args.concurrency):
        workers.append(
            asyncio.create_task(
                run_worker(
                    target, request, tally, deadline, stream=stream, tokens=args.tokens, once=args.once
                )
            )
        )
        if args.ramp_ms:  # staggered starts: streams in real life do not tick in lockstep
            await asyncio.sleep(args.ramp_ms / 1000.0 / args.concurrency)
    await asyncio.gather(*workers)
    elapsed = time.monotonic() - started
    result: dict[str, Any] = {
        "mode": args.mode,
        "concurrency": args.concurrency,
        "elapsed_s": elapsed,
        "completed": tally.completed,
        "errors": tally.errors,
        "statuses": {str(k): v for k, v in tally.statuses.items()},
        "per_second": tally.completed / elapsed if elapsed else 0.0,
        "latency_ms": percentiles_ms(tally.latencies_ns),
        "open_peak": tally.open_peak,
    }
    if stream:
        result.update(
            tokens=args.tokens,
            delay_ms=args.delay_ms,
            chunks=len(tally.delays_ns),
            short_streams=tally.short_streams,
            ttfb_ms=percentiles_ms(tally.ttfb_ns),
            chunk_delay_ms=percentiles_ms(tally.delays_ns),
        )
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="asyncio load client (prints one JSON object)")
    parser.add_argument("mode", choices=["http", "stream"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="bench")
    parser.add_argument("--header", action="append", default=[], help="'name: value', repeatable")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-d", "--duration", type=float, default=5.0, help="seconds of load")
    parser.add_argument("--once", action="store_true", help="one request per connection, then stop")
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--ramp-ms", type=float, default=0.0, help="spread connection starts over this")
    parser.add_argument("--warmup", type=int, default=1)
    return parser


def main() -> None:
    args = build_parser().parse_args()
    result = uvloop.run(run_load(args))
    print(orjson.dumps(result).decode(), flush=True)


if __name__ == "__main__":
    main()
