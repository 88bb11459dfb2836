"""Run `gateway serve` with a benchmark-only change applied, to measure a proposal before anyone makes it.

    python bench/gateway_variant.py --variant aiohttp+warning serve --config DIR --port P

Variants (joined with `+`):
- `aiohttp`: every provider's httpx client sends through aiohttp's connection pool (the `httpx-aiohttp`
  package's transport), so the gateway code is unchanged; needs `pip install aiohttp httpx-aiohttp`.
- `warning`: `--log-level WARNING` (no per-stream INFO summary line).
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

VARIANTS = ("aiohttp", "warning", "keepalive100", "metrics", "accesslog")


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
    if "metrics" in variants or "accesslog" in variants:
        add_observers(variants)
    if "warning" in variants:
        args += ["--log-level", "WARNING"]
    from gateway.cli import main as gateway_main

    return gateway_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
