"""`GET /stats`: usage per key, model, route and provider (admin only)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import require_admin
from gateway.api.state import gateway_state


async def stats(request: Request) -> Response:
    require_admin(request)
    started = gateway_state(request).running()
    document = await started.access_control.stats()
    prices = started.holder.current.config.prices
    document["currency"] = prices.currency if prices is not None else None  # of every `cost` in it
    return Response(orjson.dumps(document), media_type="application/json")
