"""Prototype (benchmark-only): an httpx transport that sends through aiohttp's connection pool.

Measured by `gateway_variant.py --variant owntransport`; meant as the starting point of a transport in
`gateway/providers/transport.py`, so providers keep their injected `httpx.AsyncClient` and the tests keep
`httpx.MockTransport`. Unlike the `httpx-aiohttp` package it maps aiohttp's errors by what happened: a
refused or unreachable connection is `httpx.ConnectError` (safe to fail over), a connection lost after
the request went out is `httpx.ReadError` or `RemoteProtocolError`, never a connect timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx


@contextlib.contextmanager
def map_aiohttp_errors(request: httpx.Request) -> Iterator[None]:
    """aiohttp and asyncio exceptions as the httpx exceptions `map_upstream_errors()` already knows."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:  # before the connection existed
        raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
    except (TimeoutError, aiohttp.SocketTimeoutError) as exc:  # waiting for bytes
        raise httpx.ReadTimeout(str(exc) or "read timeout", request=request) from exc
    except aiohttp.ClientConnectorError as exc:  # refused, unreachable, DNS: nothing was sent
        raise httpx.ConnectError(str(exc), request=request) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc


_SET_BY_AIOHTTP = frozenset(("host", "content-length", "transfer-encoding"))


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with map_aiohttp_errors(self._request):
            async for chunk in self._response.content.iter_any():  # whatever arrived: no re-chunking
                yield chunk

    async def aclose(self) -> None:
        self._response.release()  # back to the pool if fully read, closed otherwise


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session per provider, made on first use inside the running loop; closed by `aclose`."""

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._limits.max_connections or 0,
            keepalive_timeout=self._limits.keepalive_expiry or 30.0,
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # bytes pass through as upstream sent them, as with httpx's aiter_raw
            cookie_jar=aiohttp.DummyCookieJar(),  # a shared jar would carry one client's cookies to another
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None:
            session = self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        with map_aiohttp_errors(request):
            response = await session.request(
                request.method,
                str(request.url),
                headers=[(k, v) for k, v in request.headers.multi_items() if k not in _SET_BY_AIOHTTP],
                data=request.content,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=timeout.get("pool"),  # waiting for a pool slot plus connecting
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
