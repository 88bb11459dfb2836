"""Input limits on every inbound API, enforced in one place: a pure ASGI middleware in front of the key
check, reading `settings.limits` of the served config per request.

From the head alone: more than `max_headers` headers or a head over `max_header_bytes` is 431, a
Content-Length over `max_body_bytes` is 413 before a byte of the body is read. A chunked body is counted
as the endpoint reads it; the read that passes the limit raises `RequestTooLarge` (413), so at most the
limit plus one receive piece (~64 KiB from uvicorn) is ever held. Each answer is in the error shape of
the API the request came in on (`api/errors.py`) and closes the connection: the rest of the body is
never read. The counts of `messages`, `input` and `tools` are checked after parsing (`check_counts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api.config_version import served_version_header
from gateway.api.errors import error_response
from gateway.api.paths import INBOUND_PATHS
from gateway.api.recording import notify
from gateway.api.state import GatewayState
from gateway.config.models import ApiName, InputLimits
from gateway.errors import GatewayError, HeadersTooLarge, InvalidRequest, RequestTooLarge
from gateway.observe.raw_headers import header_value
from gateway.observe.request_id import accept_request_id
from gateway.records import RequestRecord

CLOSE = {"connection": "close"}  # uvicorn closes after the answer: an unread body is never read
# The list each API counts against `max_messages`.
COUNTED_ITEMS: Mapping[ApiName, str] = {
    "openai.chat": "messages",
    "anthropic.messages": "messages",
    "openai.responses": "input",
}


class InputLimitsMiddleware:
    """Pure ASGI middleware: 431 and 413 from the head, 413 while a chunked body is read."""

    def __init__(self, app: ASGIApp, state: GatewayState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.state.edge.limits
        headers = scope["headers"]
        if len(headers) > limits.max_headers:
            error: GatewayError = HeadersTooLarge(
                f"the request has {len(headers)} headers: at most {limits.max_headers} are accepted "
                "(settings.limits.max_headers)",
                headers=CLOSE,
            )
            await self._refuse(error, scope, receive, send)
            return
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        length: bytes | None = None
        chunked = False
        for name, value in headers:
            size += len(name) + len(value) + 4  # ": " and CRLF
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if size > limits.max_header_bytes:
            error = HeadersTooLarge(
                f"the request head is {size} bytes: at most {limits.max_header_bytes} are accepted "
                "(settings.limits.max_header_bytes)",
                headers=CLOSE,
            )
            await self._refuse(error, scope, receive, send)
            return
        if length is not None and length.isdigit() and int(length) > limits.max_body_bytes:
            error = body_too_large(limits.max_body_bytes)
            await self._refuse(error, scope, receive, send)
            return
        if not chunked:  # with a Content-Length the server reads the body to that length, no further
            await self.app(scope, receive, send)
            return
        bounded = ChunkedBody(receive, send, limits.max_body_bytes)
        await self.app(scope, bounded.receive, bounded.send)

    async def _refuse(self, error: GatewayError, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer `error`, and record it for an inbound API: a refusal from the head is an access line
        (and a metric) like any other refused request, though no endpoint ran."""
        state, path = self.state, scope["path"]
        request_id = accept_request_id(header_value(scope["headers"], b"x-request-id"))
        api = INBOUND_PATHS.get(path)
        if api is not None and state.observers:
            started = state.started
            record = RequestRecord(
                request_id=request_id,
                model="",
                route=None,
                provider=None,
                upstream_model=None,
                stream=False,
                status_code=error.status_code,
                attempts=0,
                duration=0.0,  # refused from the head, before any of the body was read
                error_code=error.code,
                api=api,
                config_version="" if started is None else started.holder.current.config.version,
            )
            await notify(state.observers, record)
        version = served_version_header(state)
        await error_response(error, request_id, path=path, version=version)(scope, receive, send)


def body_too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"the request body is larger than {limit} bytes, the most accepted (settings.limits.max_body_bytes)",
        headers=CLOSE,
    )


class ChunkedBody:
    """The `receive` and `send` of a request with a chunked body. `receive` counts the body and raises
    `RequestTooLarge` on the piece that passes `limit`; `send` closes the connection when the answer
    starts before the body has ended (a 401 before the body is read, a 413): uvicorn would otherwise
    read the rest of the body, however long, to reuse the connection."""

    __slots__ = ("_receive", "_send", "ended", "limit", "received")

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.received = 0
        self.ended = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise body_too_large(self.limit)
            self.ended = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and not self.ended:
            headers = list(message.get("headers", ()))
            if not any(name.lower() == b"connection" for name, _ in headers):
                message["headers"] = [*headers, (b"connection", b"close")]
        await self._send(message)


def check_counts(body: Mapping[str, Any], api: ApiName, limits: InputLimits) -> None:
    """400 naming the field when `messages` / `input` items or `tools` are more than the limits allow."""
    field = COUNTED_ITEMS.get(api)
    if field is not None:
        _check_length(body.get(field), field, limits.max_messages, "max_messages")
    _check_length(body.get("tools"), "tools", limits.max_tools, "max_tools")


def _check_length(items: object, field: str, most: int, setting: str) -> None:
    if isinstance(items, list) and len(items) > most:
        raise InvalidRequest(
            f"Invalid '{field}': array too long. Expected an array with maximum length {most}, but got "
            f"an array with length {len(items)} instead (settings.limits.{setting}).",
            param=field,
            code="array_above_max_length",
        )
