"""What `x-gateway-config-version` (and `config_version` on the record) costs a request, in this process.

    .venv/bin/python bench/config_version_cost.py            # best of 7 runs of 200,000 each

Rows (microseconds per request, the best of the runs; CPU-bound, so wall time is CPU time):
- `answer, before`: what an inference answer did before: the exchange, the record, the `Response` with
  the gateway's headers;
- `answer, now`: the same with what this feature adds: the snapshot read in `open_exchange`, the record's
  `config_version`, one append of the pair encoded once per snapshot (`Runtime.version_header`);
- `answer, formatted`: the rejected alternative, the version as one more `str` header that Starlette
  lowercases and encodes per request;
- `other answer, middleware`: a `/health`-like answer (start + body) through `ConfigVersionMiddleware`,
  against the bare app (the wrapper around `send` the inference endpoints are spared).
The gateway spends ~215 us of CPU per chat request (bench/README.md): the added cost is the difference
of the first two rows.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.responses import Response

from gateway.api.config_version import ConfigVersionMiddleware
from gateway.api.recording import Exchange
from gateway.api.state import GatewayState, Started
from gateway.config import load_config
from gateway.observe.config_version import CONFIG_VERSION_HEADER
from gateway.records import RequestRecord
from gateway.runtime.snapshot import RuntimeHolder, build_runtime

ROOT = Path(__file__).resolve().parent.parent
HEADERS = {"x-request-id": "req_0123456789abcdef", "x-gateway-attempts": "1", "x-gateway-provider": "mock"}
BODY = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": []}'


def record(exchange: Exchange, version: str) -> RequestRecord:
    return RequestRecord(
        request_id=exchange.request_id,
        model="mock",
        route="mock",
        provider="mock",
        upstream_model="mock",
        stream=False,
        status_code=200,
        attempts=1,
        duration=0.001,
        config_version=version,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--number", type=int, default=200_000)
    args = parser.parse_args()
    config = load_config([ROOT / "routes"]).config
    assert config is not None
    runtime, _ = build_runtime(config)
    holder = RuntimeHolder(runtime)
    started = Started(holder, None, None, access_control=None, access=None)  # type: ignore[arg-type]
    state = GatewayState(config_paths=[], access_settings=None, tracker=None, metrics=None, started=started)  # type: ignore[arg-type]

    def before() -> None:
        exchange = Exchange("req_0123456789abcdef", 0.0, [])
        record(exchange, "")
        Response(BODY, 200, dict(HEADERS), media_type="application/json")

    def now() -> None:
        running = state.started
        exchange = Exchange(
            "req_0123456789abcdef", 0.0, [], runtime=None if running is None else running.holder.current
        )
        current = exchange.runtime
        record(exchange, current.config.version if current is not None else "")
        response = Response(BODY, 200, dict(HEADERS), media_type="application/json")
        if current is not None:
            response.raw_headers.append(current.version_header)

    def formatted() -> None:
        exchange = Exchange("req_0123456789abcdef", 0.0, [], runtime=holder.current)
        record(exchange, holder.current.config.version)
        headers = {**HEADERS, CONFIG_VERSION_HEADER: holder.current.config.version}
        Response(BODY, 200, headers, media_type="application/json")

    rows: list[tuple[str, float]] = [
        ("answer, before", best(before, args)),
        ("answer, now", best(now, args)),
        ("answer, formatted", best(formatted, args)),
    ]
    bare, wrapped = middleware_costs(state, args)
    rows += [("other answer, bare app", bare), ("other answer, middleware", wrapped)]
    for name, cost in rows:
        print(f"{name:28} {cost:7.3f} us")
    print(f"{'added per inference answer':28} {rows[1][1] - rows[0][1]:7.3f} us")
    print(f"{'added per other answer':28} {wrapped - bare:7.3f} us")


def best(function: Callable[[], None], args: argparse.Namespace) -> float:
    """Microseconds per call, the best of `args.runs` runs."""
    timings = []
    for _ in range(args.runs):
        start = time.perf_counter()
        for _ in range(args.number):
            function()
        timings.append((time.perf_counter() - start) / args.number * 1e6)
    return min(timings)


def middleware_costs(state: GatewayState, args: argparse.Namespace) -> tuple[float, float]:
    """Microseconds per answer of a two-message ASGI app, bare and through the middleware."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: Any) -> None:
        return None

    async def receive() -> Any:
        return {"type": "http.request"}

    scope = {"type": "http", "method": "GET", "path": "/health"}
    wrapped = ConfigVersionMiddleware(app, state)

    async def measure(target: Any) -> float:
        timings = []
        for _ in range(args.runs):
            start = time.perf_counter()
            for _ in range(args.number):
                await target(scope, receive, send)
            timings.append((time.perf_counter() - start) / args.number * 1e6)
        return min(timings)

    async def both() -> tuple[float, float]:
        return await measure(app), await measure(wrapped)

    return asyncio.run(both())


if __name__ == "__main__":
    main()
