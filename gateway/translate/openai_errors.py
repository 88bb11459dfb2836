"""Reading an OpenAI-compatible upstream's error answer, for translators whose upstream speaks OpenAI."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from gateway.errors import UpstreamStatusError

# The pause a provider asks for, passed on to the client with its 429/503 (`retry-after-ms` is in
# milliseconds; the OpenAI SDK reads it first).
RETRY_HEADERS = ("retry-after-ms", "retry-after")


def read_openai_error(
    status_code: int, content: bytes, headers: Mapping[str, str], provider: str
) -> UpstreamStatusError:
    """OpenAI's `{"error": {...}}` passes through as it came (the client gets the provider's own words);
    Ollama's `{"error": "..."}` and anything else become an OpenAI error object with the status kept."""
    default_type = "invalid_request_error" if 400 <= status_code < 500 else "server_error"
    kept = {name: headers[name] for name in RETRY_HEADERS if headers.get(name)} or None
    try:
        data = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code, param = error.get("code"), error.get("param")
        return UpstreamStatusError(
            status_code,
            content,
            headers=kept,
            provider=provider,
            message=str(error.get("message") or f"upstream returned HTTP {status_code}"),
            error_type=str(error.get("type") or default_type),
            code=None if code is None else str(code),
            param=None if param is None else str(param),
            client_body=content,
        )
    if isinstance(error, str):  # Ollama
        return UpstreamStatusError(
            status_code, content, headers=kept, provider=provider, message=error, error_type=default_type
        )
    return UpstreamStatusError(status_code, content, headers=kept, provider=provider)
