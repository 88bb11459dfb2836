"""`GET /v1/models`, `GET /v1/models/{id}` and `GET /health` (provider health as the resilience layer
sees it)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import auth_status
from gateway.api.state import gateway_state
from gateway.errors import ModelNotFound
from gateway.runtime.model_listing import listed_model_names
from gateway.runtime.snapshot import Runtime


async def list_models(request: Request) -> Response:
    """The models the routes serve; with keys enforced, only those the caller's key may use (401 without).
    A caller that sends `anthropic-version` (Anthropic's SDKs do) gets Anthropic's list shape."""
    started = gateway_state(request).running()
    runtime = started.holder.current
    names = await listed_model_names(runtime)
    access = started.access
    if access is not None:
        key = access.authenticate(request.headers)
        names = [name for name in names if (match := runtime.table.resolve(name)) and key.allows(match)]
    created = int(runtime.loaded_at)
    if _anthropic_caller(request):
        data = [_anthropic_model(name, created) for name in names]
        first, last = (names[0], names[-1]) if names else (None, None)
        page = {"data": data, "has_more": False, "first_id": first, "last_id": last}
        return Response(orjson.dumps(page), media_type="application/json")
    data = [_openai_model(name, created) for name in names]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


async def retrieve_model(request: Request) -> Response:
    """OpenAI's Model object (Anthropic's ModelInfo for an Anthropic caller) for a name the routes serve
    (an exact name, an alias or a name a glob route matches), or 404 `model_not_found`; with keys
    enforced, only for a model the caller's key may use."""
    started = gateway_state(request).running()
    runtime = started.holder.current
    name = request.path_params["model"]
    match = runtime.table.resolve(name)
    access = started.access
    if access is not None:
        key = access.authenticate(request.headers)
        if match is not None and not key.allows(match):
            match = None  # a key does not learn of models it may not use
    if match is None:
        raise ModelNotFound(
            f"The model `{name}` does not exist or you do not have access to it.", param="model"
        )
    created = int(runtime.loaded_at)
    body = _anthropic_model(name, created) if _anthropic_caller(request) else _openai_model(name, created)
    return Response(orjson.dumps(body), media_type="application/json")


def _anthropic_caller(request: Request) -> bool:
    return "anthropic-version" in request.headers


def _openai_model(name: str, created: int) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": "gateway"}


def _anthropic_model(name: str, created: int) -> dict[str, Any]:
    # The release date is not known here: the time the config was loaded stands in, as `created` does.
    stamp = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": name, "display_name": name, "created_at": stamp, "lifecycle": "active"}


def provider_health(runtime: Runtime, now: float) -> dict[str, dict[str, Any]]:
    """Per provider: state (healthy / unhealthy / unavailable) and why, active checks, breaker, latency."""
    return {health.name: health.snapshot(now) for health in runtime.dispatcher.health}


async def health(request: Request) -> Response:
    """200 while at least one route has a target routing would use now (healthy or not yet checked,
    circuit not open), else 503: the signal a load balancer needs, although panic mode still tries
    unhealthy targets. 503 with status "draining" from the moment the shutdown begins."""
    state = gateway_state(request)
    runtime = state.running().holder.current
    now = time.monotonic()
    providers = provider_health(runtime, now)
    states = runtime.dispatcher.health
    servable: list[str] = []
    unservable: list[str] = []
    for route in runtime.table.routes:
        usable = any((h := states.get(t.provider)) is not None and h.routable(now) for t in route.targets)
        (servable if usable else unservable).append(route.name)
    draining = state.drain.draining
    ok = bool(servable) and not draining
    payload: dict[str, object] = {
        "status": "draining" if draining else "ok" if ok else "unavailable",
        "config_version": runtime.config.version,
        "routes": len(runtime.table.routes),
        "servable_routes": len(servable),
        "unservable_routes": unservable,
        "providers": providers,
        "auth": auth_status(state),  # "open" = no keys (served on loopback only)
    }
    access = state.running().access
    if access is not None:  # a store outage fails (or opens) only keys with limits: readiness stays
        payload["store"] = access.store_guard.state()
    return Response(orjson.dumps(payload), status_code=200 if ok else 503, media_type="application/json")
