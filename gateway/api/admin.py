"""`GET /admin/config`: which config is served, where it came from, and why the last reload failed.

Access hook: every `/admin/*` handler first awaits `GatewayState.admin_guard(request)` when it is set. Access
control installs it (a callable that raises `Unauthorized` / `PermissionDenied` unless the request carries
an admin key); until it exists the admin endpoints are open, like the rest of the gateway.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.state import gateway_state


async def guard_admin(request: Request) -> None:
    guard = gateway_state(request).admin_guard
    if guard is not None:
        await guard(request)


async def admin_config(request: Request) -> Response:
    await guard_admin(request)
    reloader = gateway_state(request).running().reloader
    return Response(
        orjson.dumps(reloader.status(), option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )
