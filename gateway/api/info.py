"""`GET /v1/models` and `GET /health`."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.runtime import Runtime


async def list_models(request: Request) -> Response:
    runtime: Runtime = request.app.state.holder.current
    created = int(runtime.loaded_at)
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "gateway"}
        for name in runtime.table.model_names()
    ]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


def provider_health(runtime: Runtime) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for provider in runtime.registry:
        state = "healthy" if provider.available else "unavailable"
        entry: dict[str, Any] = {"type": provider.config.type, "state": state}
        if provider.unavailable_reason:
            entry["reason"] = provider.unavailable_reason
        out[provider.name] = entry
    return out


async def health(request: Request) -> Response:
    runtime: Runtime = request.app.state.holder.current
    providers = provider_health(runtime)
    servable = [
        route.name
        for route in runtime.table.routes
        if any(providers.get(t.provider, {}).get("state") == "healthy" for t in route.targets)
    ]
    ok = bool(servable)
    payload = {
        "status": "ok" if ok else "unavailable",
        "config_version": runtime.config.version,
        "routes": len(runtime.table.routes),
        "servable_routes": len(servable),
        "providers": providers,
    }
    return Response(orjson.dumps(payload), status_code=200 if ok else 503, media_type="application/json")
