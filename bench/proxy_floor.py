"""Experiment: the floor under the gateway. What uvicorn, the framework and the upstream client cost alone.

    .venv/bin/python bench/proxy_floor.py [--seconds 5] [-c 50] [--variants asgi-static,asgi-aiohttp]

Each variant is a tiny ASGI app served by uvicorn (uvloop + httptools, one process on core 1, like the
gateway) and loaded by wrk on core 0 (or the asyncio client without wrk), non-streaming:

- `asgi-static`, `starlette-static`, `fastapi-static`: answer a prebuilt body. The cost of uvicorn plus
  each framework's routing and middleware: the ceiling of any gateway on that stack.
- `asgi-httpx`, `asgi-aiohttp`: a raw ASGI app that reads the body and forwards it to the mock with that
  client (pooled, timeouts set), then answers the upstream body: the cheapest possible proxy per client.
- `fastapi-httpx`: the same forward inside a FastAPI app with a plain route, as the gateway is built.

Reported per variant: requests/s, p50/p99 and the server's CPU microseconds per request.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import wrk
from bench.load_client import chat_body
from bench.processes import Service, cpu_seconds, free_port, pinned, wait_for_port
from bench.run import prepare_process
from bench.targets import MODEL, REPO, mock_service

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


def build_app(variant: str, upstream: str) -> Any:
    """The ASGI app of one variant (imported lazily: each runs in its own server process)."""
    kind, _, client = variant.partition("-")
    forward = None
    if client == "httpx":
        import httpx

        http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            timeout=httpx.Timeout(60.0),
            trust_env=False,
        )

        async def forward_httpx(body: bytes) -> bytes:
            response = await http.post(upstream, content=body, headers={"content-type": "application/json"})
            return response.content

        forward = forward_httpx
    elif client == "aiohttp":
        import aiohttp

        sessions: list[aiohttp.ClientSession] = []

        async def forward_aiohttp(body: bytes) -> bytes:
            if not sessions:  # created inside the running loop
                connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=30)
                sessions.append(aiohttp.ClientSession(connector=connector, auto_decompress=False))
            headers = {"content-type": "application/json"}
            async with sessions[0].post(upstream, data=body, headers=headers) as response:
                return await response.read()

        forward = forward_aiohttp

    async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        content = ANSWER if forward is None else await forward(b"".join(chunks))
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": content})

    if kind == "asgi":
        return raw_app
    from starlette.requests import Request
    from starlette.responses import Response

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        content = ANSWER if forward is None else await forward(body)
        return Response(content, media_type="application/json")

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


def measure(variant: str, mock_port: int, workdir: Path, seconds: float, concurrency: int) -> dict[str, Any]:
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
    server = Service(variant, pinned(command, "1"), workdir / f"{variant}.log", cwd=REPO).start()
    try:
        wait_for_port(server, port, 30)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        script = wrk.write_script(workdir / "post.lua", chat_body(MODEL, stream=False), [])
        wrk.run(url, script, connections=concurrency, duration=1, prefix=pinned([], "0"))  # warm-up
        before, started = cpu_seconds(server.pid), time.monotonic()
        result = wrk.run(url, script, connections=concurrency, duration=seconds, prefix=pinned([], "0"))
        cpu, wall = cpu_seconds(server.pid) - before, time.monotonic() - started
    finally:
        server.stop()
    return {
        "variant": variant,
        "per_second": result["per_second"],
        "p50": result["latency_ms"]["p50"],
        "p99": result["latency_ms"]["p99"],
        "cpu_pct": 100 * cpu / wall,
        "us_per_request": 1e6 * cpu / max(1, result["completed"]),
        "errors": result["errors"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="uvicorn/framework/client floor under the gateway")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.upstream)
        return 0
    if not wrk.available():
        print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
        return 2
    prepare_process()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-floor-"))
    mock_port = free_port()
    mock = mock_service(workdir, mock_port, "0").start()
    rows = []
    try:
        wait_for_port(mock, mock_port, 30)
        for variant in args.variants.split(","):
            row = measure(variant, mock_port, workdir, args.seconds, args.concurrency)
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    finally:
        mock.stop()
    print(f"\n| variant | req/s (c={args.concurrency}) | p50 ms | p99 ms | server CPU | CPU us/request |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['per_second']:,.0f} | {row['p50']:.2f} | {row['p99']:.2f} | "
            f"{row['cpu_pct']:.0f}% | {row['us_per_request']:,.0f} |"
        )
    print("\nload average: " + " ".join(f"{value:.2f}" for value in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
