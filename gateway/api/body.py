"""The first check of every inbound body: JSON, and an object."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidRequest


def json_object(raw: bytes) -> dict[str, Any]:
    if not raw:
        raise InvalidRequest("request body is empty: expected a JSON object", code="invalid_json")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object", code="invalid_json")
    return body
