"""The one error tree of the gateway.

Every failure a client can see is a `GatewayError`; each class knows its HTTP status, its OpenAI error
`type` and `code`. Only `gateway.api` turns them into HTTP responses.

    GatewayError
    ├── ClientError                      the request itself is wrong (4xx)
    │   ├── InvalidRequest               400 invalid_request_error
    │   ├── Unauthorized                 401 invalid_api_key
    │   ├── PermissionDenied             403 model_not_allowed
    │   ├── ModelNotFound                404 model_not_found
    │   ├── RequestTooLarge              413 request_too_large (a body over settings.limits)
    │   ├── HeadersTooLarge              431 request_header_fields_too_large
    │   └── RateLimited                  429 rate_limit_exceeded (carries headers)
    ├── ProviderUnavailable              503 the route's providers cannot be used (missing secret, ...)
    ├── LimitsUnavailable                503 the usage store cannot answer (store_failure_mode fail_closed)
    ├── ShuttingDown                     503 the gateway stopped serving: its shutdown grace is over
    └── UpstreamError                    the provider failed
        ├── UpstreamConnectError         502 could not connect / connection dropped
        ├── UpstreamTimeout              504 connect, read, first-byte or total timeout
        ├── UpstreamCapacity             503 the gateway's own limit toward the provider is reached
        ├── UpstreamProtocolError        502 the provider answered something we cannot read
        ├── UpstreamRedirect             502 the provider answered 3xx: never followed, never passed on
        ├── UpstreamAuthFailed           502 the provider refused the gateway's own credentials (401/403)
        ├── UpstreamAddressRefused       502 the provider's address is link-local or metadata (SSRF guard)
        └── UpstreamStatusError          the provider answered an HTTP error: passed through as received

    ConfigError                          a route file is invalid (never an HTTP response)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson


class GatewayError(Exception):
    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def to_dict(self) -> dict[str, object]:
        """The OpenAI error object: `{"error": {"message", "type", "param", "code"}}`."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }

    def body(self) -> bytes:
        """The JSON body to send to the client."""
        return orjson.dumps(self.to_dict())


class ClientError(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class InvalidRequest(ClientError):
    pass


class Unauthorized(ClientError):
    status_code = 401
    code = "invalid_api_key"


class PermissionDenied(ClientError):
    status_code = 403
    code = "model_not_allowed"


class ModelNotFound(ClientError):
    status_code = 404
    code = "model_not_found"


class RequestTooLarge(ClientError):
    status_code = 413
    code = "request_too_large"


class HeadersTooLarge(ClientError):
    status_code = 431
    code = "request_header_fields_too_large"


class RateLimited(ClientError):
    status_code = 429
    error_type = "requests"
    code = "rate_limit_exceeded"


class ClientClosedRequest(ClientError):
    """The client went away before the answer began (nginx's 499): nothing is sent, it is recorded."""

    status_code = 499
    code = "client_closed_request"


class ProviderUnavailable(GatewayError):
    status_code = 503
    error_type = "server_error"
    code = "provider_unavailable"


class LimitsUnavailable(GatewayError):
    """A key's limits cannot be checked: the usage store is down and the mode is `fail_closed`."""

    status_code = 503
    error_type = "server_error"
    code = "store_unavailable"


class ShuttingDown(GatewayError):
    """The shutdown grace ended before the answer did: a stream gets it as its final error event, a
    request whose answer had not begun gets it as a 503."""

    status_code = 503
    error_type = "server_error"
    code = "gateway_shutting_down"


class UpstreamError(GatewayError):
    """The provider failed. `retryable_kind` names the kind for `retry_on` (e.g. `connect_error`).

    `target_misconfigured`: the failure is the target's configuration (a redirect, refused credentials),
    so the same target will fail the same way and another one may not: fail over, never retry."""

    status_code = 502
    error_type = "server_error"
    code = "upstream_error"
    retryable_kind: str = "upstream_error"
    target_misconfigured: bool = False


class UpstreamConnectError(UpstreamError):
    code = "upstream_connect_error"
    retryable_kind = "connect_error"


class UpstreamReadError(UpstreamConnectError):
    """The connection broke while reading the answer."""

    code = "upstream_read_error"
    retryable_kind = "read_error"


class UpstreamTimeout(UpstreamError):
    status_code = 504
    code = "upstream_timeout"
    retryable_kind = "timeout"


class UpstreamCapacity(UpstreamError):
    """The provider's connection pool (or its `max_concurrent_requests`) stayed full for the whole
    `acquire_timeout`. Nothing was sent; it always fails over, and says nothing of the provider's health."""

    status_code = 503
    code = "upstream_capacity"
    retryable_kind = "capacity"


class UpstreamProtocolError(UpstreamError):
    code = "upstream_protocol_error"
    retryable_kind = "protocol_error"


class UpstreamRedirect(UpstreamError):
    """The provider answered a 3xx. Following it could send the gateway's key to another host, and passing
    it on would show the client a Location it cannot use: neither is done."""

    code = "upstream_redirect"
    retryable_kind = "redirect"
    target_misconfigured = True


class UpstreamAuthFailed(UpstreamError):
    """The provider answered 401/403: it refused the gateway's credentials for it, not the client's key."""

    code = "upstream_auth_failed"
    retryable_kind = "auth"
    target_misconfigured = True


class UpstreamAddressRefused(UpstreamConnectError):
    """The provider's host resolved to a link-local or cloud metadata address (the SSRF guard), and the
    provider does not set `allow_private_network`. Nothing was sent."""

    code = "upstream_address_refused"
    retryable_kind = "address_refused"
    target_misconfigured = True


class UpstreamStatusError(UpstreamError):
    """An HTTP error answer from the provider: the client gets its status, and an error body in the client's
    API's shape. The translator of the attempt reads the provider's body (`translate/`) and passes what it
    found; `client_body` is a body already in the client's shape, sent as it is."""

    def __init__(
        self,
        status_code: int,
        body: bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
        provider: str = "",
        message: str | None = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        client_body: bytes | None = None,
        client_format: str = "openai",
    ) -> None:
        self.status_code = status_code
        self.raw_body = body
        self.client_body = client_body
        self.client_format = client_format  # the API shape `client_body` is in: "openai" or "anthropic"
        self.retryable_kind = str(status_code)
        client_fault = 400 <= status_code < 500
        self.error_type = error_type or ("invalid_request_error" if client_fault else "server_error")
        if message is None:
            text = body[:200].decode("utf-8", "replace").strip()
            where = f" from provider {provider!r}" if provider else ""
            message = f"upstream returned HTTP {status_code}{where}" + (f": {text}" if text else "")
            code = code or f"upstream_http_{status_code}"
        super().__init__(message, code=code, param=param, headers=headers)

    def body(self) -> bytes:
        if self.client_body is not None and self.client_format == "openai":
            return self.client_body
        return super().body()


class ConfigError(Exception):
    """Route files could not be loaded; `diagnostics` carries each problem with its position."""

    # config.diagnostics.Diagnostic objects: this module imports nothing of ours and needs only str() of each.
    def __init__(self, diagnostics: Sequence[object]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))
