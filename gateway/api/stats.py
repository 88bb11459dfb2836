"""`GET /stats`: usage per key, model, route and provider (admin only)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import require_admin
from gateway.api.state import gateway_state


async def stats(request: Request) -> Response:
    require_admin(request)
    controller = gateway_state(request).running().access_control
    return Response(orjson.dumps(await controller.stats()), media_type="application/json")
