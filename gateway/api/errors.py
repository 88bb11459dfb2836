"""The one place where gateway errors become HTTP responses (OpenAI's error format)."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.config_version import served_version_header
from gateway.api.state import gateway_state
from gateway.errors import GatewayError, InvalidRequest, ModelNotFound
from gateway.observe.config_version import CONFIG_VERSION_HEADER, HeaderPair
from gateway.translate.anthropic_errors import error_body_for_messages

logger = logging.getLogger("gateway.api")

JSON = "application/json"


# Paths whose clients speak Anthropic's API get its error shape; every other path OpenAI's.
ANTHROPIC_PATHS = "/v1/messages"


def error_response(
    exc: GatewayError, request_id: str | None = None, *, path: str = "", version: HeaderPair | None = None
) -> Response:
    """`exc` in its API's error shape. `version`: the served config's header, for an error that does not
    carry one already (those of admitted requests carry the version that served them)."""
    headers = dict(exc.headers)
    if request_id:
        headers["x-request-id"] = request_id
    if path.startswith(ANTHROPIC_PATHS):
        if request_id:
            headers["request-id"] = request_id  # the Anthropic SDKs quote it in their errors
        body = error_body_for_messages(exc)
    else:
        body = exc.body()
    response = Response(body, status_code=exc.status_code, media_type=JSON, headers=headers)
    if version is not None and CONFIG_VERSION_HEADER not in headers:
        response.raw_headers.append(version)
    return response


def _served(request: Request) -> HeaderPair | None:
    return served_version_header(gateway_state(request))


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    request_id = getattr(request.state, "request_id", None)
    return error_response(exc, request_id, path=request.url.path, version=_served(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error: GatewayError
    if exc.status_code == 404:
        error = ModelNotFound(f"no such endpoint: {request.method} {request.url.path}", code="not_found")
    else:
        error = InvalidRequest(str(exc.detail), code="http_error")
        error.status_code = exc.status_code
    error.headers.update(exc.headers or {})
    return error_response(error, path=request.url.path, version=_served(request))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    param = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
    error = InvalidRequest(str(first.get("msg", "invalid request")), param=param)
    return error_response(error, path=request.url.path, version=_served(request))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    request_id = getattr(request.state, "request_id", None)
    error = GatewayError("internal gateway error")
    return error_response(error, request_id, path=request.url.path, version=_served(request))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
