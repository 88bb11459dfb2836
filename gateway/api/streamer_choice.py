"""Which streamer writes a stream: the body field beats the header beats the route's `streaming:`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.errors import InvalidRequest
from gateway.observe.raw_headers import header_value

ASGI_OVERRIDE_FIELD = "x_use_asgi_streaming"
ASGI_OVERRIDE_HEADER = "x-use-asgi-streaming"
ASGI_OVERRIDE_NAME = ASGI_OVERRIDE_HEADER.encode()  # as in the ASGI scope


def use_asgi_streamer(body: dict[str, Any], headers: Iterable[tuple[bytes, bytes]], route_mode: str) -> bool:
    """Body field beats header (looked for only without the field) beats the route's `streaming:`."""
    override = body.get(ASGI_OVERRIDE_FIELD)
    if override is not None:
        return bool(override)
    header = header_value(headers, ASGI_OVERRIDE_NAME)
    if header is not None:
        value = header.strip().lower()
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no"):
            return False
        raise InvalidRequest(
            f"header {ASGI_OVERRIDE_HEADER} must be true or false",
            param=ASGI_OVERRIDE_HEADER,
            code="invalid_value",
        )
    return route_mode == "asgi"
