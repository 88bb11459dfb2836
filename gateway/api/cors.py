"""Opt-in CORS (`settings.cors`), a pure ASGI middleware that reads the served config per request.

Off (no `settings.cors`): one attribute read, then the app, untouched. On, it follows Starlette's
`CORSMiddleware`: a preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here,
before the key check (browsers send no credentials on a preflight) and without reaching an endpoint:
204 with the allow headers, or 400 without them when the origin, method or a header is not allowed.
Every other answer to an allowed origin (errors, 413/431 and SSE streams included) gets
Access-Control-Allow-Origin, and Vary: Origin when the answer depends on the origin.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.config_version import served_version_header
from gateway.api.state import GatewayState
from gateway.config.models import CorsSettings

ALL_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY"})
# Request headers a browser may send without asking (Starlette allows these always, so do we).
SAFELISTED_HEADERS = frozenset({"accept", "accept-language", "content-language", "content-type"})
PREFLIGHT_VARY = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
Headers = list[tuple[bytes, bytes]]


class CorsPolicy:
    """`CorsSettings` made ready to answer: sets to look in and header values already encoded."""

    __slots__ = (
        "any_header",
        "any_origin",
        "credentials",
        "expose",
        "header_prefixes",
        "headers",
        "max_age",
        "methods",
        "methods_value",
        "origins",
        "settings",
    )

    def __init__(self, settings: CorsSettings) -> None:
        self.settings = settings
        self.any_origin = "*" in settings.allow_origins
        self.origins = frozenset(origin.encode() for origin in settings.allow_origins)
        self.methods = ALL_METHODS if "*" in settings.allow_methods else frozenset(settings.allow_methods)
        self.methods_value = ", ".join(sorted(self.methods)).encode()
        self.any_header = "*" in settings.allow_headers
        exact = {header for header in settings.allow_headers if not header.endswith("*")}
        self.headers = frozenset(exact) | SAFELISTED_HEADERS
        self.header_prefixes = tuple(
            header[:-1] for header in settings.allow_headers if header.endswith("*") and header != "*"
        )
        self.credentials = settings.allow_credentials
        self.expose = ", ".join(settings.expose_headers).encode()
        self.max_age = str(settings.max_age).encode()

    def allows_origin(self, origin: bytes) -> bool:
        return self.any_origin or origin in self.origins

    def allows_header(self, name: str) -> bool:
        return self.any_header or name in self.headers or name.startswith(self.header_prefixes)

    def allow_origin_value(self, origin: bytes) -> bytes:
        """`*` when any origin may call without credentials; the origin itself otherwise."""
        return b"*" if self.any_origin and not self.credentials else origin

    @property
    def varies(self) -> bool:
        """Whether the answer depends on the Origin (then caches must key on it)."""
        return not self.any_origin or self.credentials

    def preflight(
        self, origin: bytes, method: bytes, asked: bytes | None, private: bool
    ) -> tuple[int, Headers, bytes]:
        """The answer to a preflight (status, headers, body): 204 with the allow headers, or 400 without."""
        failures: list[str] = []
        if not self.allows_origin(origin):
            failures.append("origin")
        if method.decode("latin-1") not in self.methods:
            failures.append("method")
        names = [name.strip() for name in asked.decode("latin-1").lower().split(",")] if asked else []
        if any(name and not self.allows_header(name) for name in names):
            failures.append("headers")
        if private:
            failures.append("private-network")  # as Starlette without allow_private_network
        headers: Headers = [(b"vary", PREFLIGHT_VARY)]
        if failures:
            text = ("Disallowed CORS " + ", ".join(failures)).encode()
            headers.append((b"content-type", b"text/plain; charset=utf-8"))
            headers.append((b"content-length", b"%d" % len(text)))
            return 400, headers, text
        headers += [
            (b"access-control-allow-origin", self.allow_origin_value(origin)),
            (b"access-control-allow-methods", self.methods_value),
            (b"access-control-max-age", self.max_age),
        ]
        if names:
            allowed = ", ".join(name for name in names if name)
            headers.append((b"access-control-allow-headers", allowed.encode("latin-1")))
        if self.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return 204, headers, b""

    def actual_headers(self, origin: bytes | None) -> Headers:
        """Headers added to the answer of a request that is not a preflight."""
        if origin is None or not self.allows_origin(origin):
            return [(b"vary", b"Origin")] if self.varies else []
        headers: Headers = [(b"access-control-allow-origin", self.allow_origin_value(origin))]
        if self.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        if self.expose:
            headers.append((b"access-control-expose-headers", self.expose))
        if self.varies:
            headers.append((b"vary", b"Origin"))
        return headers


class CorsMiddleware:
    """Pure ASGI middleware: CORS per `settings.cors` of the served config; nothing when it is off."""

    def __init__(self, app: ASGIApp, state: GatewayState) -> None:
        self.app = app
        self.state = state
        self.policy: CorsPolicy | None = None  # compiled for the settings last seen (a reload changes them)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.state.edge.cors
        if settings is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy
        if policy is None or policy.settings is not settings:
            policy = self.policy = CorsPolicy(settings)
        origin = method = asked = None
        private = False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                method = value
            elif name == b"access-control-request-headers":
                asked = value
            elif name == b"access-control-request-private-network":
                private = True
        if origin is not None and method is not None and scope["method"] == "OPTIONS":
            status, headers, body = policy.preflight(origin, method, asked, private)
            version = served_version_header(self.state)
            if version is not None:
                headers = [*headers, version]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        added = policy.actual_headers(origin)
        if not added:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _merged(list(message.get("headers", ())), added)
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _merged(headers: Headers, added: Headers) -> Headers:
    """`headers` with `added`; a Vary already there is extended rather than repeated."""
    for name, value in added:
        if name == b"vary":
            for index, (existing, current) in enumerate(headers):
                if existing.lower() == b"vary":
                    headers[index] = (existing, current + b", " + value)
                    break
            else:
                headers.append((name, value))
        elif name == b"access-control-allow-origin":
            headers = [item for item in headers if item[0].lower() != name] + [(name, value)]
        else:
            headers.append((name, value))
    return headers
