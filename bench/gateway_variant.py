"""Run `gateway serve` with a benchmark-only change applied, to measure a proposal before anyone makes it.

    python bench/gateway_variant.py --variant aiohttp+warning serve --config DIR --port P

Variants (joined with `+`):
- `aiohttp`: every provider's httpx client sends through aiohttp's connection pool (the `httpx-aiohttp`
  package's transport), so the gateway code is unchanged; needs `pip install aiohttp httpx-aiohttp`.
- `owntransport`: the same over `bench/aiohttp_transport.py`, the in-house prototype with exact errors.
- `notelemetry`: FastAPI's per-request OpenTelemetry check switched off.
- `fastrequest`: upstream requests built from a URL parsed once (no `AsyncClient.build_request`).
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
    "aiohttp",
    "owntransport",
    "notelemetry",
    "fastrequest",
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


def use_own_transport() -> None:
    """`owntransport`: bench/aiohttp_transport.py (the in-house prototype) instead of httpx-aiohttp's."""
    import httpx

    from bench.aiohttp_transport import AiohttpTransport
    from gateway.providers import registry, transport

    original = transport.build_client

    def build_client(*, timeouts: Any, pool: Any, transport: Any = None) -> httpx.AsyncClient:
        if transport is None:
            transport = AiohttpTransport(httpx_limits(pool))
        return original(timeouts=timeouts, pool=pool, transport=transport)

    def httpx_limits(pool: Any) -> httpx.Limits:
        return httpx.Limits(max_connections=pool.max_connections, keepalive_expiry=pool.keepalive_expiry)

    registry.build_client = build_client  # type: ignore[assignment]


def skip_fastapi_telemetry() -> None:
    """`notelemetry`: FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})."""
    from gateway import cli

    original = cli.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        app._telemetry.update(tracing=False, metrics=False, logs=False)  # the dict NativeTelemetry reads
        return app

    cli.create_app = create_app  # type: ignore[assignment]


def build_requests_directly() -> None:
    """`fastrequest`: the upstream request from a URL parsed once and the provider's headers, without
    `AsyncClient.build_request` (which re-parses the URL and merges client headers and cookies)."""
    import httpx

    from gateway.providers.base import Provider
    from gateway.providers.transport import httpx_timeout

    urls: dict[str, httpx.URL] = {}

    def build_request(self: Provider, content: bytes, request_id: str, timeouts: Any = None) -> httpx.Request:
        url = urls.get(self.chat_url)
        if url is None:
            url = urls[self.chat_url] = httpx.URL(self.chat_url)
        headers = (
            [*self._base_headers.items(), ("x-request-id", request_id)] if request_id else self._base_headers
        )
        timeout = httpx_timeout(timeouts) if timeouts is not None else self.client.timeout  # type: ignore[union-attr]
        return httpx.Request(
            "POST", url, content=content, headers=headers, extensions={"timeout": timeout.as_dict()}
        )

    Provider.build_request = build_request  # type: ignore[method-assign]


def add_observers(variants: list[str]) -> None:
    """`metrics` / `accesslog`: the observe/ observers on every request, as the app will wire them."""
    from gateway import cli
    from gateway.observe.access_log import AccessLog
    from gateway.observe.metrics import GatewayMetrics

    original = cli.create_app

    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = original(*args, **kwargs)
        if "metrics" in variants:
            app.state.observers.append(GatewayMetrics())
        if "accesslog" in variants:
            app.state.observers.append(AccessLog())
        return app

    cli.create_app = create_app  # type: ignore[assignment]


def use_aiohttp_transport() -> None:
    import aiohttp
    import httpx
    from httpx_aiohttp import AiohttpTransport

    from gateway.providers import registry, transport

    original = transport.build_client

    def build_client(*, timeouts: Any, pool: Any, transport: Any = None) -> httpx.AsyncClient:
        if transport is not None:  # the in-process mock provider keeps its own transport
            return original(timeouts=timeouts, pool=pool, transport=transport)

        def session() -> aiohttp.ClientSession:  # made on first use, inside the running loop
            connector = aiohttp.TCPConnector(
                limit=pool.max_connections, keepalive_timeout=pool.keepalive_expiry
            )
            return aiohttp.ClientSession(connector=connector, auto_decompress=False)

        return original(timeouts=timeouts, pool=pool, transport=AiohttpTransport(client=session))

    registry.build_client = build_client  # type: ignore[assignment]


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
    if "owntransport" in variants:
        use_own_transport()
    if "notelemetry" in variants:
        skip_fastapi_telemetry()
    if "fastrequest" in variants:
        build_requests_directly()
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
