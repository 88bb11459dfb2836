"""The body side every pass-through pair shares: the request as the client sent it (only `model` changes
when the route renames it, so nothing else is re-serialised), the answer as the upstream wrote it."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.config.models import ProviderConfig, RouteConfig


class PassThroughBody:
    __slots__ = ()

    def __init__(
        self, body: dict[str, Any], provider: ProviderConfig, *, stream: bool, route: RouteConfig
    ) -> None:
        pass

    def request_body(self, body: dict[str, Any], upstream_model: str, raw: bytes = b"") -> bytes:
        if raw and body.get("model") == upstream_model:
            return raw
        return orjson.dumps({**body, "model": upstream_model})

    def response_body(self, content: bytes) -> bytes:
        return content
