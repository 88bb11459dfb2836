"""Experiment: the floor under the gateway. What uvicorn, the framework and the upstream client cost alone.

    .venv/bin/python bench/proxy_floor.py [http] [--seconds 5] [-c 50] [--variants asgi-static,asgi-aiohttp]
    .venv/bin/python bench/proxy_floor.py stream200   # 200 streams at 20 ms/token: per-chunk delay and CPU

Each variant is a tiny ASGI app served by uvicorn (uvloop + httptools, one process on core 1, like the
gateway) and loaded from core 0 by wrk (non-streaming) or the stream client (`stream200`), measured with
the benchmark's own `scenarios.measure`:

- `asgi-static`, `starlette-static`, `fastapi-static`: answer a prebuilt body. The cost of uvicorn plus
  each framework's routing and middleware: the ceiling of any gateway on that stack.
- `asgi-httpx`, `asgi-aiohttp`: a raw ASGI app that reads the body and forwards it to the mock with that
  client (pooled, timeouts set), then answers the upstream body, or relays each upstream read as one ASGI
  body message for a stream: the cheapest possible proxy per client.
- `fastapi-httpx`: the same forward inside a FastAPI app with a plain route, as the gateway is built.

Reported per variant: requests/s, p50/p99 and the server's CPU microseconds per request; for streams the
per-chunk delay (and what it adds over `direct`, the mock alone) and CPU microseconds per chunk.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import wrk
from bench.processes import Service, free_port, pinned, wait_for_port
from bench.run import prepare_process
from bench.scenarios import Probes, Scenario, measure
from bench.targets import REPO, Target, mock_service

VARIANTS = (
    "asgi-static",
    "starlette-static",
    "fastapi-static",
    "asgi-httpx",
    "asgi-aiohttp",
    "fastapi-httpx",
)
ANSWER = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench","choices":[{"index"'
    b':0,"message":{"role":"assistant","content":"static"},"finish_reason":"stop"}]}'
)
HEADERS = [(b"content-type", b"application/json")]
STREAM_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
UPSTREAM_HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
STREAM = re.compile(rb'"stream"\s*:\s*true')


def build_app(variant: str, upstream: str) -> Any:
    """The ASGI app of one variant (imported lazily: each runs in its own server process)."""
    kind, _, client = variant.partition("-")
    relay: Callable[[bytes], AsyncIterator[bytes]] | None = None
    if client == "httpx":
        import httpx

        http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            timeout=httpx.Timeout(60.0),
            trust_env=False,
        )

        async def relay_httpx(body: bytes) -> AsyncIterator[bytes]:
            request = http.build_request("POST", upstream, content=body, headers=UPSTREAM_HEADERS)
            response = await http.send(request, stream=True)
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            finally:
                await response.aclose()

        relay = relay_httpx
    elif client == "aiohttp":
        import aiohttp

        sessions: list[aiohttp.ClientSession] = []

        async def relay_aiohttp(body: bytes) -> AsyncIterator[bytes]:
            if not sessions:  # created inside the running loop
                connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=30)
                sessions.append(aiohttp.ClientSession(connector=connector, auto_decompress=False))
            async with sessions[0].post(upstream, data=body, headers=UPSTREAM_HEADERS) as response:
                async for chunk in response.content.iter_any():
                    yield chunk

        relay = relay_aiohttp

    async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if relay is None:
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": ANSWER})
        elif STREAM.search(body):
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            async for chunk in relay(body):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        else:
            content = b"".join([chunk async for chunk in relay(body)])
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            await send({"type": "http.response.body", "body": content})

    if kind == "asgi":
        return raw_app
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        if relay is None:
            return Response(ANSWER, media_type="application/json")
        if STREAM.search(body):
            return StreamingResponse(relay(body), media_type="text/event-stream")
        return Response(b"".join([chunk async for chunk in relay(body)]), media_type="application/json")

    if kind == "starlette":
        from starlette.applications import Starlette
        from starlette.routing import Route

        return Starlette(routes=[Route("/v1/chat/completions", endpoint, methods=["POST"])])
    from fastapi import FastAPI

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.router.add_route("/v1/chat/completions", endpoint, methods=["POST"])
    return app


def serve(variant: str, port: int, upstream: str) -> None:
    import uvicorn

    uvicorn.run(
        build_app(variant, upstream),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="off",
    )


def measure_variant(variant: str, mock_port: int, scenario: Scenario, probes: Probes) -> dict[str, Any]:
    """One variant under `scenario`; `direct` measures the mock alone (the floor of the stream delay)."""
    if variant == "direct":
        return measure(scenario, Target("direct", "direct", mock_port), probes)
    port = free_port()
    upstream = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
    command = [
        sys.executable,
        str(Path(__file__)),
        "--serve",
        variant,
        "--port",
        str(port),
        "--upstream",
        upstream,
    ]
    server = Service(variant, pinned(command, "1"), probes.workdir / f"{variant}.log", cwd=REPO).start()
    try:
        wait_for_port(server, port, 30)
        target = Target(variant, variant, port, service=server)
        measure(dataclasses.replace(scenario, duration=1.0), target, probes)  # warm-up
        return measure(scenario, target, probes)
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="uvicorn/framework/client floor under the gateway")
    parser.add_argument("mode", choices=["http", "stream200"], nargs="?", default="http")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("-c", "--concurrency", type=int, default=50, help="non-streaming connections")
    parser.add_argument(
        "--variants", help="comma-separated; default: all for http, direct + asgi-* for streams"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.upstream)
        return 0
    prepare_process()
    if args.mode == "http":
        scenario = Scenario("http", "floor", "http", args.concurrency, args.seconds)
        variants = args.variants or ",".join(VARIANTS)
    else:
        scenario = Scenario("stream_200", "floor", "stream", 200, args.seconds, 50, 20.0, 20.0)
        variants = args.variants or "direct,asgi-httpx,asgi-aiohttp,starlette-aiohttp"
    workdir = Path(tempfile.mkdtemp(prefix="gateway-floor-"))
    mock_port = free_port()
    mock = mock_service(workdir, mock_port, "0").start()
    probes = Probes(mock_pid=mock.pid, workdir=workdir, use_wrk=wrk.available())
    rows = []
    try:
        wait_for_port(mock, mock_port, 30)
        for variant in variants.split(","):
            row = measure_variant(variant, mock_port, scenario, probes)
            rows.append((variant, row))
            print(variant, json.dumps(row)[:600], file=sys.stderr, flush=True)
    finally:
        mock.stop()
    print_table(args.mode, scenario, rows)
    print("\nload average: " + " ".join(f"{value:.2f}" for value in os.getloadavg()))
    return 0


def print_table(mode: str, scenario: Scenario, rows: list[tuple[str, dict[str, Any]]]) -> None:
    if mode == "http":
        print(
            f"\n| variant | req/s (c={scenario.concurrency}) | p50 ms | p99 ms | server CPU "
            "| CPU us/request |"
        )
        print("|---|---|---|---|---|---|")
        for variant, row in rows:
            cpu = row["cpu"]
            print(
                f"| {variant} | {row['per_second']:,.0f} | {row['latency_ms']['p50']:.2f} | "
                f"{row['latency_ms']['p99']:.2f} | {cpu.get('proxy_pct', 0):.0f}% | "
                f"{cpu.get('proxy_us_per_request', 0):,} |"
            )
        return
    floor = rows[0][1]["chunk_delay_ms"] if rows and rows[0][0] == "direct" else None
    print("\n| variant | chunk p50 ms | chunk p99 ms | added p99 ms | chunks | server CPU | CPU us/chunk |")
    print("|---|---|---|---|---|---|---|")
    for variant, row in rows:
        delay, cpu = row["chunk_delay_ms"], row["cpu"]
        added = f"{delay['p99'] - floor['p99']:+.2f}" if floor and variant != "direct" else "—"
        per_chunk = cpu.get("proxy_us_per_request", 0) / scenario.tokens if "proxy_pct" in cpu else 0
        print(
            f"| {variant} | {delay['p50']:.2f} | {delay['p99']:.2f} | {added} | {row['chunks']:,} | "
            f"{cpu.get('proxy_pct', 0):.0f}% | {per_chunk:.0f} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
