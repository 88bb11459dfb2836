"""Run `gateway serve` with a benchmark-only change applied, to measure a proposal before anyone makes it.

    python bench/gateway_variant.py --variant aiohttp+warning serve --config DIR --port P

Variants (joined with `+`):
- `httpcore`: providers send over httpx's own pool (httpcore), as before the gateway moved to its
  own HTTP/1.1 client (`gateway/providers/h1/`): the comparison for that choice.
- `aiohttp`: the `httpx-aiohttp` package's transport instead of the gateway's own (`pip install
  httpx-aiohttp`).
(`owntransport`, `notelemetry` and `fastrequest`, measured in bench/README.md, are now the gateway's
own code: its H1 transport, `FastAPI(telemetry=...)` off, `Provider.build_request`.)
- `warning`: `--log-level WARNING` (no per-stream INFO summary line); the runner's default since
  the gateway targets run with `LOG_LEVEL=WARNING`, like the peers' logging (see targets.py).
- `info`: `--log-level INFO`: the access line per request on, as the gateway runs by default.
- `gc`: `gc.freeze()` after startup and a higher young-generation threshold.
- `keepalive100` is a config change, applied by `targets.py` (pool `max_keepalive_connections: 100`).
- `metrics`, `accesslog`: `gateway.observe`'s request observers added to the app (its cost with them on).

The runner selects these as targets named `gateway-asgi@aiohttp+warning`. Nothing here is imported by
the gateway; the patch is applied in this process only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

VARIANTS = (
    "httpcore",
    "aiohttp",
    "warning",
    "info",
    "keepalive100",
    "metrics",
    "accesslog",
    "gc",
)


def tune_garbage_collector() -> None:
    """`gc`: the startup heap frozen out of the collector and young collections rarer, so a collection's
    pause lands on fewer chunks: `gc.freeze()` after the app is built."""
    import gc

    from gateway import cli

    original = cli.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        return app

    cli.create_app = create_app  # type: ignore[assignment]


def replace_h1_transport(make: Any) -> None:
    """Every provider kind that sends over the H1 pool gets `make(config)`'s transport instead."""
    from dataclasses import replace

    from gateway.providers import kinds

    for name, kind in list(kinds.KINDS.items()):
        if kind.transport is kinds.network_transport_for:
            kinds.KINDS[name] = replace(kind, transport=make)  # type: ignore[index]


def httpx_limits(pool: Any) -> Any:
    import httpx

    return httpx.Limits(
        max_connections=pool.max_connections,
        max_keepalive_connections=pool.max_keepalive_connections,
        keepalive_expiry=pool.keepalive_expiry,
    )


def use_httpcore() -> None:
    """`httpcore`: httpx's default transport (its httpcore pool) under every real provider."""
    import httpx

    from gateway.providers.httpx_adapter import HttpxTransport

    def make(config: Any) -> Any:
        return HttpxTransport(httpx.AsyncHTTPTransport(limits=httpx_limits(config.pool), trust_env=False))

    replace_h1_transport(make)


def add_observers(variants: list[str]) -> None:
    """`metrics` / `accesslog`: the observe/ observers on every request, as the app will wire them."""
    from gateway import cli
    from gateway.api.state import app_state
    from gateway.observe.access_log import AccessLog
    from gateway.observe.metrics import GatewayMetrics

    original = cli.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        if "metrics" in variants:
            app_state(app).observers.append(GatewayMetrics())
        if "accesslog" in variants:
            app_state(app).observers.append(AccessLog())
        return app

    cli.create_app = create_app  # type: ignore[assignment]


def use_aiohttp_transport() -> None:
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    from gateway.providers.httpx_adapter import HttpxTransport

    def make(config: Any) -> Any:
        pool = config.pool

        def session() -> aiohttp.ClientSession:  # made on first use, inside the running loop
            connector = aiohttp.TCPConnector(
                limit=pool.max_connections, keepalive_timeout=pool.keepalive_expiry
            )
            return aiohttp.ClientSession(connector=connector, auto_decompress=False)

        return HttpxTransport(AiohttpTransport(client=session))

    replace_h1_transport(make)


def main() -> int:
    args = sys.argv[1:]
    variants: list[str] = []
    if len(args) >= 2 and args[0] == "--variant":
        variants, args = args[1].split("+"), args[2:]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        print(f"unknown variants: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if "aiohttp" in variants:
        use_aiohttp_transport()
    if "httpcore" in variants:
        use_httpcore()
    if "gc" in variants:
        tune_garbage_collector()
    if "metrics" in variants or "accesslog" in variants:
        add_observers(variants)
    if "warning" in variants:
        args += ["--log-level", "WARNING"]
    if "info" in variants:
        args += ["--log-level", "INFO"]
    from gateway.cli import main as gateway_main

    return gateway_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
