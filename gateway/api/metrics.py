"""`GET /metrics` (Prometheus text format, admin only when keys are enforced) and its wiring to the app.

Metrics are on unless `GATEWAY_METRICS` is `0`/`false`/`no`/`off` (or `create_app(metrics=False)`): then
no metrics observer runs on any request and `/metrics` answers 404. The provider gauges and the reload
counts are read from the live runtime and reload manager at each scrape (see `observe/metrics.py`).
"""

from __future__ import annotations

import asyncio
import os

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import require_admin
from gateway.api.state import gateway_state
from gateway.observe.metrics import GatewayMetrics
from gateway.observe.worker_state import ProviderStatus, ReloadCounts
from gateway.runtime.reload import ReloadManager
from gateway.runtime.snapshot import Runtime, RuntimeHolder

METRICS_ENV = "GATEWAY_METRICS"
_OFF = ("0", "false", "no", "off")


def metrics_enabled(value: bool | None = None) -> bool:
    """`value` when given, else `$GATEWAY_METRICS` (on unless it says off)."""
    if value is not None:
        return value
    return os.environ.get(METRICS_ENV, "1").strip().lower() not in _OFF


def provider_statuses(runtime: Runtime) -> list[ProviderStatus]:
    """Every provider of `runtime` as the scrape reports it (attribute reads only)."""
    statuses: list[ProviderStatus] = []
    for health in runtime.dispatcher.health:
        pool = health.provider.pool_state()
        statuses.append(
            ProviderStatus(
                name=health.name,
                available=health.provider.available,
                healthy=health.check_status != "unhealthy",
                breaker=health.breaker.state,
                connections_in_use=pool.in_use,
                connections_idle=pool.idle,
                waiting=pool.waiting,
            )
        )
    return statuses


def watch_app(metrics: GatewayMetrics, holder: RuntimeHolder, reloader: ReloadManager) -> None:
    """Connect `metrics` to the app's runtime and reload manager (the lifespan calls it once)."""
    metrics.watch_providers(lambda: provider_statuses(holder.current))
    metrics.watch_reloads(lambda: ReloadCounts(reloader.reload_count, reloader.rejected_count))
    metrics.config_loaded(holder.current.config.version, holder.current.loaded_at)
    metrics.reload_result(True)
    reloader.on_swap.append(lambda _, new: metrics.config_loaded(new.config.version, new.loaded_at))
    reloader.on_attempt.append(lambda attempt: metrics.reload_result(attempt.outcome != "rejected"))


async def metrics_endpoint(request: Request) -> Response:
    require_admin(request)
    metrics = gateway_state(request).metrics
    if metrics is None:
        body = {
            "error": {
                "message": f"metrics are turned off ({METRICS_ENV}=0)",
                "type": "invalid_request_error",
                "param": None,
                "code": "not_found",
            }
        }
        return Response(orjson.dumps(body), status_code=404, media_type="application/json")
    metrics.flush()  # here, on the loop's thread, where the tallies are counted
    # Off the event loop: a multiprocess scrape reads every worker's files, and streams keep flowing.
    content, content_type = await asyncio.to_thread(metrics.render, flush=False)
    return Response(content, headers={"content-type": content_type, "cache-control": "no-store"})
