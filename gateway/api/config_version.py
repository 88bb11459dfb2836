"""`x-gateway-config-version` on every answer: the version of the config that served it.

The inference endpoints (POST on the paths in `ANSWERED_HERE`) put it on their answers themselves, from
the snapshot the request was served from, with their other gateway headers (`api/respond.py`,
`api/recording.py`; errors through `api/errors.py`): one append of a header pair encoded once per
snapshot, and no wrapper around `send`, which a stream would pay per event. Every other answer (`/health`,
`/v1/models`, `/metrics`, `/admin/*`, unknown paths, CORS preflights, 405s) gets it here from the config
served at that moment: those answers are one or two messages, so wrapping `send` costs them well under a
microsecond.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.paths import INBOUND_PATHS
from gateway.api.state import GatewayState
from gateway.observe.config_version import HeaderPair

ANSWERED_HERE = frozenset(INBOUND_PATHS)


def served_version_header(state: GatewayState) -> HeaderPair | None:
    """The header of the config served now; None before the lifespan has started."""
    started = state.started
    return None if started is None else started.holder.current.version_header


class ConfigVersionMiddleware:
    """Pure ASGI middleware: add `x-gateway-config-version` to the answers the endpoints do not label."""

    def __init__(self, app: ASGIApp, state: GatewayState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"] == "POST" and scope["path"] in ANSWERED_HERE):
            await self.app(scope, receive, send)
            return
        state = self.state

        async def send_labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                header = served_version_header(state)
                headers = list(message.get("headers", ()))
                if header is not None and all(name != header[0] for name, _ in headers):
                    headers.append(header)
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_labelled)
