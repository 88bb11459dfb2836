"""Experiment: what each upstream HTTP client costs per request, apart from the gateway around it.

    .venv/bin/python bench/upstream_clients.py [--seconds 5] [-c 50] [--clients httpx-default,aiohttp]

Each client runs in its own process on core 1 against the mock upstream on core 0 and sends what the
gateway sends (same body and headers, timeouts set, one pooled client), non-streaming and 20-token
streams, for a fixed time at a fixed concurrency. Reported: requests/s and CPU microseconds per request
of the client process (user + system, from getrusage), the figure that decides a one-core gateway's
ceiling. `httpx-aiohttp` is httpx's API over aiohttp's pool (the `httpx-aiohttp` package's transport).
aiohttp and httpx-aiohttp are needed only here (`.venv/bin/pip install aiohttp httpx-aiohttp`); `raw` is
the benchmark's own httptools client, the floor of what any Python client can cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop

from bench.load_client import Target, chat_body
from bench.processes import free_port, pinned, wait_for_port
from bench.run import prepare_process
from bench.targets import MODEL, REPO, mock_service

CLIENTS = ("httpx-default", "httpx-tuned", "httpcore", "httpx-aiohttp", "aiohttp", "raw")
HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "authorization": "Bearer sk-upstream",
    "x-request-id": "req_0123456789abcdef01234567",
}
Send = Callable[[], Awaitable[int]]


async def make_sender(client: str, url: str, body: bytes, stream: bool) -> tuple[Send, Callable[[], Any]]:
    """A coroutine function sending one request (returns bytes received) and a close function."""
    if client.startswith("httpx"):
        import httpx

        keepalive = 10 if client == "httpx-default" else 1000  # the gateway's default pool keeps 10 idle
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=keepalive, keepalive_expiry=30)
        transport = None
        if client == "httpx-aiohttp":  # httpx's API (and MockTransport seam) over aiohttp's connection pool
            import aiohttp
            from httpx_aiohttp import AiohttpTransport

            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1000, keepalive_timeout=30), auto_decompress=False
            )
            transport = AiohttpTransport(client=session)
        http = httpx.AsyncClient(
            limits=limits, timeout=httpx.Timeout(60.0), trust_env=False, transport=transport
        )

        async def send_httpx() -> int:
            request = http.build_request("POST", url, content=body, headers=HEADERS)
            if not stream:  # as the gateway's Provider.complete: the whole body, read by httpx
                return len((await http.send(request)).content)
            response = await http.send(request, stream=True)
            try:
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                return size
            finally:
                await response.aclose()

        return send_httpx, http.aclose
    if client == "httpcore":
        import httpcore

        pool = httpcore.AsyncConnectionPool(max_connections=1000, max_keepalive_connections=1000)
        extensions = {"timeout": {"connect": 60.0, "read": 60.0, "write": 60.0, "pool": 60.0}}
        headers = list(HEADERS.items())

        async def send_httpcore() -> int:
            async with pool.stream(
                "POST", url, headers=headers, content=body, extensions=extensions
            ) as response:
                size = 0
                async for chunk in response.aiter_stream():
                    size += len(chunk)
                return size

        return send_httpcore, pool.aclose
    if client == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=30)
        timeout = aiohttp.ClientTimeout(total=None, connect=60, sock_read=60)
        session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)

        async def send_aiohttp() -> int:
            async with session.post(url, data=body, headers=HEADERS) as response:
                size = 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                return size

        return send_aiohttp, session.close
    if client == "raw":
        target = Target.from_url(url, [f"{k}: {v}" for k, v in HEADERS.items() if k != "content-type"])
        request = target.request(body)
        idle: list[Any] = []

        async def send_raw() -> int:
            connection = idle.pop() if idle else await target.connect()
            await connection.send(request)
            size = connection.body_bytes
            idle.append(connection)
            return size

        return send_raw, lambda: [connection.close() for connection in idle]
    raise ValueError(client)


async def workload(client: str, url: str, stream: bool, seconds: float, concurrency: int) -> dict[str, Any]:
    body = chat_body(MODEL, stream=stream, tokens=20)
    send, close = await make_sender(client, url, body, stream)
    await send()  # warm: imports, first connection
    count = 0
    received = 0

    async def worker(deadline: float) -> None:
        nonlocal count, received
        while time.monotonic() < deadline:
            size = await send()  # not `received += await ...`: that reads `received` before the await
            received += size
            count += 1

    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    await asyncio.gather(*(worker(started + seconds) for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    result = close()
    if asyncio.iscoroutine(result):
        await result
    cpu = (usage_after.ru_utime + usage_after.ru_stime) - (usage_before.ru_utime + usage_before.ru_stime)
    return {
        "client": client,
        "stream": stream,
        "requests": count,
        "per_second": count / elapsed,
        "cpu_pct": 100 * cpu / elapsed,
        "us_per_request": 1e6 * cpu / count if count else None,
        "bytes_per_request": received / count if count else None,
    }


def child(args: argparse.Namespace) -> None:
    result = uvloop.run(workload(args.client, args.url, args.stream, args.seconds, args.concurrency))
    print(json.dumps(result), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="upstream HTTP client cost per request")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    prepare_process()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-clients-"))
    port = free_port()
    mock = mock_service(workdir, port, "0").start()
    rows = []
    try:
        wait_for_port(mock, port, 30)
        for stream in (False, True):
            for client in args.clients.split(","):
                command = [
                    sys.executable,
                    str(Path(__file__)),
                    "--child",
                    "--client",
                    client,
                    "--url",
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    "--seconds",
                    str(args.seconds),
                    "-c",
                    str(args.concurrency),
                ] + (["--stream"] if stream else [])
                done = subprocess.run(pinned(command, "1"), cwd=REPO, capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"{client}: failed\n{done.stderr[-1500:]}", file=sys.stderr)
                    continue
                row = json.loads(done.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        mock.stop()
    print(f"\n| client | mode | req/s (c={args.concurrency}) | CPU % of core 1 | CPU us/request |")
    print("|---|---|---|---|---|")
    for row in rows:
        mode = "stream 20 tokens" if row["stream"] else "non-streaming"
        print(
            f"| {row['client']} | {mode} | {row['per_second']:,.0f} | {row['cpu_pct']:.0f}% | "
            f"{row['us_per_request']:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
