"""FastAPI app assembly: the lifespan that owns every async resource, and the routes.

The chat endpoints are plain Starlette routes returning ASGI callables: no pydantic body model and no
response model on the hot path (the body is parsed once with orjson and forwarded).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import cast

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from gateway import __version__
from gateway.api.admin import admin_config
from gateway.api.auth import access_settings, apply_access, reload_access, start_access
from gateway.api.chat import chat_completions, chat_completions_asgi
from gateway.api.compare import streaming_compare
from gateway.api.completions import completions
from gateway.api.config_version import ConfigVersionMiddleware
from gateway.api.cors import CorsMiddleware
from gateway.api.direct_routes import DirectEndpoint, DirectRoutes
from gateway.api.embeddings import embeddings
from gateway.api.errors import install_error_handlers
from gateway.api.inflight import InflightMiddleware
from gateway.api.info import health, list_models, retrieve_model
from gateway.api.input_limits import InputLimitsMiddleware
from gateway.api.messages import count_tokens, messages
from gateway.api.metrics import metrics_enabled, metrics_endpoint, watch_app
from gateway.api.responses import responses
from gateway.api.state import GatewayState, Started
from gateway.api.stats import stats
from gateway.api.workers import publish_worker_config
from gateway.config import Diagnostic, load_config
from gateway.config.models import GatewayConfig
from gateway.errors import ConfigError
from gateway.observe.access_log import AccessLog
from gateway.observe.logging import configure_logging
from gateway.observe.metrics import GatewayMetrics
from gateway.observe.tracing import Tracing
from gateway.observe.worker_state import StoreStatus
from gateway.resilience.checker import HealthChecker
from gateway.runtime.inflight import InflightTracker
from gateway.runtime.reload import ReloadManager
from gateway.runtime.snapshot import RuntimeHolder, build_runtime

logger = logging.getLogger("gateway")


def create_app(
    config_path: str | Path | list[str | Path] = "routes",
    *,
    reload: bool = True,
    config: GatewayConfig | None = None,
    metrics: bool | None = None,
) -> FastAPI:
    """The gateway app for the route files at `config_path` (a directory or files).

    The config is loaded (and validated) here, so a broken config fails at startup, not on first request.
    `reload=False` stops watching the route files; SIGHUP reloads them either way. `metrics` turns the
    Prometheus metrics on or off (default: on unless `$GATEWAY_METRICS` says off).
    """
    paths = config_path if isinstance(config_path, list) else [config_path]
    warnings: list[Diagnostic] = []
    if config is None:
        loaded = load_config(paths)
        if loaded.config is None:
            raise ConfigError(loaded.diagnostics)
        config, warnings = loaded.config, loaded.warnings
    initial = config
    access_config = access_settings(initial)  # bad keys/auth/settings fail here, like any config error
    gateway_metrics = GatewayMetrics() if metrics_enabled(metrics) else None
    state = GatewayState(
        config_paths=list(paths),
        access_settings=access_config,
        tracker=InflightTracker(),
        metrics=gateway_metrics,
        edge=initial.edge,
        # RequestObserver instances (metrics, access log; usage accounting joins in the lifespan).
        observers=[AccessLog()] if gateway_metrics is None else [gateway_metrics, AccessLog()],
        stream_observers=[] if gateway_metrics is None else [gateway_metrics],
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime, _ = build_runtime(initial)
        holder = RuntimeHolder(runtime)
        logger.info(
            "gateway %s serving %d routes over %d providers (config %s)",
            __version__,
            len(runtime.table.routes),
            len(runtime.registry),
            runtime.config.version,
        )
        for provider in runtime.registry:
            if not provider.available:
                logger.warning("provider %s is unavailable: %s", provider.name, provider.unavailable_reason)
        reloader = ReloadManager(holder, paths, state.tracker, warnings=warnings)
        if gateway_metrics is not None:
            watch_app(gateway_metrics, holder, reloader)  # provider state, reload counts, config version
        checker = HealthChecker()  # active health checks; follows every reload
        checker.sync(runtime.dispatcher.health)
        reloader.on_swap.append(lambda _, new: checker.sync(new.dispatcher.health))
        access = await start_access(state, access_config)  # usage store, observer, admin guard
        if gateway_metrics is not None:
            guard = access.store_guard
            gateway_metrics.watch_store(lambda: StoreStatus(guard.down_since is None, guard.unavailable))
            gateway_metrics.watch_would_block(access.shadow.counts)
        started = Started(holder, reloader, checker, access_control=access, access=None)
        started.worker_files = publish_worker_config(holder, reloader)  # with --workers N
        apply_access(started, access)
        state.started = started  # from here on, handlers can serve
        reloader.on_swap.append(lambda _, new: reload_access(started, access, new.config))
        reloader.on_swap.append(lambda _, new: state.use_edge(new.config.edge))
        reloader.on_swap.append(lambda old, new: warn_tracing_change(old.config, new.config))
        # Traces: from the startup config and OTEL_* (read once); None when off.
        tracing = state.tracing = Tracing.start(initial.tracing, os.environ)
        if tracing is not None and gateway_metrics is not None:
            sink = tracing.sink
            gateway_metrics.watch_dropped_spans(lambda: sink.dropped)
        reloader.start(watch=reload)
        state.late_watches.start()
        settle_garbage_collector()
        try:
            yield
        finally:
            await reloader.aclose()  # stop watching first: no swap while shutting down
            if started.worker_files is not None:
                started.worker_files.remove()
            await state.late_watches.aclose()
            await access.aclose()  # last usage flush, then the store
            await checker.aclose()  # no probe may use a client being closed
            await holder.current.registry.aclose()
            if tracing is not None:  # last: the spans of requests ended above are exported now
                state.tracing = None
                await asyncio.to_thread(tracing.shutdown)

    app = GatewayApp(
        title="gateway",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # FastAPI's native OpenTelemetry checks its settings (os.environ) on every request: ~3% of our CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    app.state.gateway = state  # the one state object: read it with gateway_state() (api/state.py)
    for path, endpoint in INBOUND_APIS.items():  # in the router too: other methods get 405, not 404
        app.router.add_route(path, asgi_endpoint(endpoint), methods=["POST"])
    app.router.add_route("/streaming-compare", streaming_compare, methods=["GET"])
    app.router.add_route("/v1/models", list_models, methods=["GET"])
    app.router.add_route("/v1/models/{model:path}", retrieve_model, methods=["GET"])
    app.router.add_route("/health", health, methods=["GET"])
    app.router.add_route("/stats", stats, methods=["GET"])
    app.router.add_route("/metrics", metrics_endpoint, methods=["GET"])
    app.router.add_route("/admin/config", admin_config, methods=["GET"])

    def edge(framework: ASGIApp) -> ASGIApp:
        # A POST to an inbound API goes straight to its endpoint; the rest through FastAPI's stack.
        # The rest gets x-gateway-config-version here; the inbound APIs put it on their answers themselves
        # (no wrapper around a stream's `send`).
        inner: ASGIApp = DirectRoutes(ConfigVersionMiddleware(framework, state=state), INBOUND_APIS)
        # Counts every request until its last byte, so a reload closes old providers only once idle.
        inner = InflightMiddleware(inner, tracker=state.tracker, drain=state.drain)
        # Before the key check and any endpoint: 431/413 from the head, 413 while a chunked body is read.
        inner = InputLimitsMiddleware(inner, state=state)
        # Outermost, so the limits' answers carry CORS headers too (a browser could not read them).
        return CorsMiddleware(inner, state=state)

    app.edge = edge
    return app


class GatewayApp(FastAPI):
    """FastAPI with the gateway's own pure-ASGI edge in front of its whole middleware stack (`edge`, set
    by `create_app`), so the inbound APIs skip the framework's layers (`api/direct_routes.py`)."""

    edge: Callable[[ASGIApp], ASGIApp] | None = None

    def build_middleware_stack(self) -> ASGIApp:
        framework = super().build_middleware_stack()
        return framework if self.edge is None else self.edge(framework)


# The inbound APIs, by path: POST only.
INBOUND_APIS: dict[str, DirectEndpoint] = {
    "/v1/chat/completions": chat_completions,
    "/v1/chat/completions/asgi": chat_completions_asgi,
    "/v1/embeddings": embeddings,
    "/v1/completions": completions,
    "/v1/responses": responses,
    "/v1/messages": messages,
    "/v1/messages/count_tokens": count_tokens,
}


Endpoint = Callable[[Request], Awaitable[Response]]


def asgi_endpoint(handler: Callable[[Request], Awaitable[ASGIApp]]) -> Endpoint:
    """An endpoint that answers with any ASGI app (the streamers are not `Response`s). Starlette calls
    what an endpoint returns as an ASGI app; its hints say `Response`, so the one cast is here."""
    return cast(Endpoint, handler)


def warn_tracing_change(old: GatewayConfig, new: GatewayConfig) -> None:
    """`settings.tracing` is read at startup only: say so when a reload changes it."""
    if old.tracing != new.tracing:
        logger.warning("settings.tracing changed: it takes effect when the gateway restarts")


def settle_garbage_collector() -> None:
    """Move everything built at startup out of the collector's sight, and collect less often.

    A full collection walks every object alive (~90,000 after startup), 55-85 ms on this class of machine:
    a stall of every stream at once. Requests leave no reference cycles (tests pin that), so frozen
    startup objects plus a higher first threshold cut the per-chunk p99 from +11 ms to +3 ms at 50
    streams (bench/README.md, streaming engine section).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and multi-worker runs: config from `$GATEWAY_CONFIG`, logging
    from `$LOG_LEVEL` and `$LOG_FORMAT` (a worker process starts with no logging set up)."""
    configure_logging()
    return create_app(
        os.environ.get("GATEWAY_CONFIG", "routes"), reload=not os.environ.get("GATEWAY_NO_RELOAD")
    )
