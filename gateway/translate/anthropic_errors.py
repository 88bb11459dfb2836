"""Anthropic's error shape, both ways: reading an Anthropic upstream's error answer, and writing an error
for a client that speaks Anthropic Messages (`{"type": "error", "error": {"type", "message"}}`).

The Anthropic SDKs pick their exception class by HTTP status alone (400, 401, 403, 404, 409, 413, 422, 429,
>= 500), so the status is kept exactly; the `type` follows Anthropic's list for that status.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from gateway.errors import GatewayError, UpstreamStatusError
from gateway.translate.openai_errors import RETRY_HEADERS

# Anthropic's error types by status (https://docs.anthropic.com/en/api/errors).
ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status_code: int) -> str:
    found = ERROR_TYPES.get(status_code)
    if found is not None:
        return found
    return "invalid_request_error" if 400 <= status_code < 500 else "api_error"


def anthropic_error_body(status_code: int, message: str, error_type: str | None = None) -> bytes:
    """An Anthropic error body; `error_type` None: the type Anthropic uses for `status_code`."""
    return orjson.dumps(
        {"type": "error", "error": {"type": error_type or error_type_for(status_code), "message": message}}
    )


def anthropic_error_event(exc: GatewayError) -> bytes:
    """The final `error` event of a Messages stream that failed after its first byte."""
    data = orjson.dumps(
        {"type": "error", "error": {"type": error_type_for(exc.status_code), "message": exc.message}}
    )
    return b"event: error\ndata: " + data + b"\n\n"


def error_body_for_messages(exc: GatewayError) -> bytes:
    """The body a Messages client gets for `exc`: an upstream's own Anthropic error as it came, any other
    error of ours in Anthropic's shape with the same status."""
    if (
        isinstance(exc, UpstreamStatusError)
        and exc.client_body is not None
        and exc.client_format == "anthropic"
    ):
        return exc.client_body
    return anthropic_error_body(exc.status_code, exc.message)


def read_anthropic_error(
    status_code: int, content: bytes, headers: Mapping[str, str], provider: str, *, for_messages_client: bool
) -> UpstreamStatusError:
    """An Anthropic upstream's error answer. A Messages client gets the body as it came when it is an
    Anthropic error; an OpenAI chat client gets an OpenAI error object with the same status and message."""
    kept = {name: headers[name] for name in RETRY_HEADERS if headers.get(name)}
    try:
        data = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return UpstreamStatusError(status_code, content, headers=kept or None, provider=provider)
    message = str(error.get("message") or f"upstream returned HTTP {status_code}")
    anthropic_type = str(error.get("type") or error_type_for(status_code))
    if for_messages_client:
        return UpstreamStatusError(
            status_code, content, headers=kept or None, provider=provider, message=message,
            error_type=anthropic_type, client_body=content, client_format="anthropic",
        )  # fmt: skip
    openai_type = "invalid_request_error" if 400 <= status_code < 500 else "server_error"
    return UpstreamStatusError(
        status_code, content, headers=kept or None, provider=provider, message=message,
        error_type=openai_type, code=anthropic_type,
    )  # fmt: skip
