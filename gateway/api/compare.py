"""`GET /streaming-compare?model=&prompt=&max_tokens=`: one request sent through the ASGI streamer, the
Starlette streamer and the non-streaming path, each timed as a client sees it.

The requests go over real HTTP to the gateway's own listening address (the request's `server`), one after
the other on one kept-alive connection opened (and warmed) beforehand, so every method pays the same
network path and none pays a TCP handshake. The client is owned by the request that asks for the
comparison and closed when it ends: the endpoint is a diagnostic, nothing of it outlives its call.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from gateway.api.state import gateway_state
from gateway.api.streamer_choice import ASGI_OVERRIDE_HEADER
from gateway.errors import GatewayError, InvalidRequest
from gateway.observe.request_id import accept_request_id
from gateway.providers.error_mapping import map_upstream_errors
from gateway.streaming.measure import ReceivedBody

DEFAULT_PROMPT = "Say hello in one short sentence."
# (method name, stream?, value of the x-use-asgi-streaming header)
METHODS: tuple[tuple[str, bool, str | None], ...] = (
    ("asgi", True, "true"),
    ("starlette", True, "false"),
    ("non_streaming", False, None),
)
_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=30.0, pool=5.0)
_FORWARDED = ("authorization", "x-api-key")  # the caller's key authorises the three requests


async def streaming_compare(request: Request) -> Response:
    access = gateway_state(request).running().access
    if access is not None:
        access.authenticate(request.headers)  # no key, no three upstream requests
    params = request.query_params
    model = params.get("model")
    if not model:
        raise InvalidRequest(
            "query parameter 'model' is required", param="model", code="missing_required_parameter"
        )
    prompt = params.get("prompt") or DEFAULT_PROMPT
    max_tokens = _max_tokens(params.get("max_tokens"))
    base_url = own_url(request.scope)
    request_id = accept_request_id(request.headers.get("x-request-id"))
    headers = {name: value for name in _FORWARDED if (value := request.headers.get(name))}
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens

    methods: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(
        base_url=base_url,
        timeout=_TIMEOUT,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        trust_env=False,
        verify=False,  # our own listening socket: its certificate names a host, not this address
    ) as client:
        await _warm_up(client, headers)
        for name, stream, asgi in METHODS:
            method_headers = {**headers, "x-request-id": f"{request_id}-{name}"}
            if asgi is not None:
                method_headers[ASGI_OVERRIDE_HEADER] = asgi
            payload = orjson.dumps({**body, "stream": stream})
            methods[name] = await _timed(client, payload, method_headers, stream)
    result = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "methods": methods}
    return Response(orjson.dumps(result), media_type="application/json", headers={"x-request-id": request_id})


def own_url(scope: Scope) -> str:
    """The gateway's address as this request reached it (`http://host:port`)."""
    server = scope.get("server")
    if not server or server[1] is None:
        raise GatewayError(
            "streaming-compare needs the gateway to listen on TCP (it calls its own address)",
            code="compare_unavailable",
        )
    host, port = server
    if ":" in host:
        host = f"[{host}]"
    return f"{scope.get('scheme', 'http')}://{host}:{port}"


def _max_tokens(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InvalidRequest(
            "'max_tokens' must be a positive integer", param="max_tokens", code="invalid_value"
        )
    return value


async def _warm_up(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """Open the connection the three measured requests then share (any answer will do)."""
    try:
        with map_upstream_errors("gateway"):
            await client.get("/v1/models", headers=headers)
    except GatewayError:
        pass  # the measured requests report the failure themselves


async def _timed(
    client: httpx.AsyncClient, payload: bytes, headers: dict[str, str], stream: bool
) -> dict[str, Any]:
    body = ReceivedBody(started=time.perf_counter(), sse=stream)
    streamer: str | None = None
    try:
        with map_upstream_errors("gateway"):
            async with client.stream(
                "POST",
                "/v1/chat/completions",
                content=payload,
                headers={**headers, "content-type": "application/json"},
            ) as response:
                body.status = response.status_code
                streamer = response.headers.get("x-gateway-streamer")
                body.sse = stream and response.headers.get("content-type", "").startswith("text/event-stream")
                async for piece in response.aiter_raw():
                    body.feed(piece, time.perf_counter())
    except GatewayError as exc:
        body.error = exc.message
    body.finish(time.perf_counter())
    return {"streamer": streamer, **body.report()}
