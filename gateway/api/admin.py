"""`GET /admin/config`: which config is served, where it came from, and why the last reload failed.

Access hook: every `/admin/*` handler first awaits `app.state.admin_guard(request)` when it is set. Access
control installs it (a callable that raises `Unauthorized` / `PermissionDenied` unless the request carries
an admin key); until it exists the admin endpoints are open, like the rest of the gateway.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.reload import ReloadManager

AdminGuard = Callable[[Request], Awaitable[None]]


async def guard_admin(request: Request) -> None:
    guard: AdminGuard | None = getattr(request.app.state, "admin_guard", None)
    if guard is not None:
        await guard(request)


async def admin_config(request: Request) -> Response:
    await guard_admin(request)
    reloader: ReloadManager = request.app.state.reloader
    return Response(
        orjson.dumps(reloader.status(), option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )
