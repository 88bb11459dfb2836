"""`HttpxTransport`: any httpx transport behind our seam (tests' `httpx.MockTransport`, httpx's own pool).

Only the transport is used, never `httpx.AsyncClient`: its auth flow, redirects, cookie jar and hooks do
nothing for a proxy (the key is a header, redirects are off, upstream cookies must not reach other callers).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping

import httpx

from gateway.config.models import ProviderConfig
from gateway.providers.transport import PoolState, WireRequest


def httpx_transport_for(config: ProviderConfig, context: ssl.SSLContext) -> HttpxTransport:
    """`transport: httpx`: httpx's own pool (and HTTP/2 with `http2: true`, through h2) for a provider,
    with the same limits, TLS context and proxy choice as our client would use."""
    pool = config.pool
    limits = httpx.Limits(
        max_connections=pool.max_connections,
        max_keepalive_connections=pool.max_keepalive_connections,
        keepalive_expiry=pool.keepalive_expiry,
    )
    explicit = config.proxy if config.proxy not in (None, "environment") else None
    if config.http2:
        context.set_alpn_protocols(["h2", "http/1.1"])
    transport = httpx.AsyncHTTPTransport(
        verify=context,
        http2=config.http2,
        limits=limits,
        proxy=explicit,
        trust_env=config.proxy == "environment",
    )
    return HttpxTransport(transport)


class HttpxTransport:
    __slots__ = ("_httpx",)

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._httpx = transport

    async def send(self, request: WireRequest) -> HttpxResponse:
        httpx_request = httpx.Request(
            request.method,
            request.url,
            content=request.content,
            headers=list(request.headers),
            extensions={"timeout": request.timeouts.as_httpx_extension()},
        )
        return HttpxResponse(await self._httpx.handle_async_request(httpx_request))

    def pool_state(self) -> PoolState:
        return PoolState(0, 0)  # httpx transports do not report their pools

    async def aclose(self) -> None:
        await self._httpx.aclose()


class HttpxResponse:
    """An `httpx.Response` as a `WireResponse`: the body decoded as httpx decodes it (`aiter_bytes`)."""

    __slots__ = ("_response",)

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def complete(self) -> bool:
        return self._response.is_stream_consumed

    async def aread(self) -> bytes:
        return await self._response.aread()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_bytes():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()
