"""`GET /admin/config`: which config is served, where it came from, why the last reload failed, and every
worker's version (`workers`; `converged` is false while they differ, e.g. a reload that reached only some).

Access hook: every `/admin/*` handler first awaits `GatewayState.admin_guard(request)` when it is set. Access
control installs it (a callable that raises `Unauthorized` / `PermissionDenied` unless the request carries
an admin key); until it exists the admin endpoints are open, like the rest of the gateway.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.state import gateway_state
from gateway.api.workers import workers_report


async def guard_admin(request: Request) -> None:
    guard = gateway_state(request).admin_guard
    if guard is not None:
        await guard(request)


async def admin_config(request: Request) -> Response:
    await guard_admin(request)
    started = gateway_state(request).running()
    status = started.reloader.status()
    workers = await workers_report(started.holder, started.reloader, started.worker_files)
    status["workers"] = workers
    status["converged"] = len({worker["version"] for worker in workers}) == 1
    return Response(
        orjson.dumps(status, option=orjson.OPT_INDENT_2),
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )
