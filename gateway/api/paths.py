"""The inbound APIs' paths (POST only) and the short name of the API each speaks, for records of requests
refused before an endpoint ran (`api/input_limits.py`) and the answers that label themselves
(`api/config_version.py`). `api/app.py` maps the same paths to their endpoints."""

from __future__ import annotations

from collections.abc import Mapping

INBOUND_PATHS: Mapping[str, str] = {
    "/v1/chat/completions": "chat",
    "/v1/chat/completions/asgi": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
    "/v1/messages/count_tokens": "messages",
}
