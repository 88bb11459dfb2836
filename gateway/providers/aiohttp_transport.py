"""An httpx transport that sends through aiohttp's connection pool: the real upstreams' wire.

Providers keep their `httpx.AsyncClient` (so unit tests inject `httpx.MockTransport` and the built-in mock
provider stays an in-process httpx transport), but under load httpcore was two thirds of the gateway's
CPU; sending through aiohttp behind the same client measured 1,286 -> 556 us per request (bench/README.md).

aiohttp's exceptions become the httpx exceptions `map_upstream_errors()` already maps, chosen by what
happened: a refused or unreachable connection is `httpx.ConnectError` (nothing was sent: safe to fail
over), a connection lost after the request went out is `httpx.ReadError` / `RemoteProtocolError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import httpx


@dataclass(frozen=True, slots=True)
class PoolState:
    """How many upstream connections a provider's pool holds: lent to a request, and idle (kept alive)."""

    in_use: int
    idle: int


@contextlib.contextmanager
def map_aiohttp_errors(request: httpx.Request | None = None) -> Iterator[None]:
    """aiohttp and asyncio exceptions as httpx exceptions (the order matters: most specific first)."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:  # no connection yet: pool slot or connect
        raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
    except (TimeoutError, aiohttp.SocketTimeoutError) as exc:  # waiting for bytes
        raise httpx.ReadTimeout(str(exc) or "read timeout", request=request) from exc
    except aiohttp.ClientConnectorError as exc:  # refused, unreachable, DNS, TLS: nothing was sent
        raise httpx.ConnectError(str(exc), request=request) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise httpx.RemoteProtocolError(str(exc) or "server disconnected", request=request) from exc
    except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
        raise httpx.RemoteProtocolError(str(exc), request=request) from exc
    except (aiohttp.ClientOSError, aiohttp.ClientConnectionError) as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
    except aiohttp.ClientError as exc:  # e.g. an invalid URL
        raise httpx.ProtocolError(str(exc) or type(exc).__name__, request=request) from exc


# Headers aiohttp computes itself from the URL and the body.
_SET_BY_AIOHTTP = frozenset(("host", "content-length", "transfer-encoding"))


class _ResponseStream(httpx.AsyncByteStream):
    __slots__ = ("_request", "_response")

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with map_aiohttp_errors(self._request):
            async for chunk in self._response.content.iter_any():  # whatever arrived: no re-chunking
                yield chunk

    async def aclose(self) -> None:
        # A fully read answer returns its connection to the pool; a half-read one (client gone, error)
        # is closed, so no later request reads the rest of an abandoned stream.
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpResponse:
    """An upstream answer straight from aiohttp, without httpx's models: the part of `httpx.Response`'s
    interface providers use (`status_code`, case-insensitive `headers`, `aread`, `aiter_bytes`,
    `aclose`), with aiohttp's errors raised as httpx's."""

    __slots__ = ("_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers = response.headers

    async def aread(self) -> bytes:
        with map_aiohttp_errors():
            return await self._response.read()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        with map_aiohttp_errors():
            async for chunk in self._response.content.iter_any():  # whatever arrived: no re-chunking
                yield chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:  # half-read (client gone, error): closed, never reused
            self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session per provider, made on first use inside the running loop; closed by `aclose`.

    Pool limits map onto `aiohttp.TCPConnector`: `max_connections` is its `limit` (None: unlimited),
    `keepalive_expiry` its `keepalive_timeout`, and `max_keepalive_connections=0` is `force_close`
    (aiohttp has no cap on the number of idle connections; it keeps each for `keepalive_expiry`).
    Per-request timeouts come from httpx's `timeout` extension: `pool` bounds getting a connection
    (aiohttp's `connect`: a free slot plus connecting), `connect` the TCP connect, `read` each wait for
    bytes (the response head included). aiohttp has no write timeout; request bodies are small.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        limits = self._limits
        force_close = limits.max_keepalive_connections == 0
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            force_close=force_close,
            keepalive_timeout=None if force_close else limits.keepalive_expiry,
        )
        return aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # httpx's response decodes `content-encoding`, as over httpcore
            cookie_jar=aiohttp.DummyCookieJar(),  # a shared jar would carry one client's cookies to another
            skip_auto_headers=("User-Agent", "Accept-Encoding"),  # the httpx client's own values are sent
        )

    def _timeout(self, extension: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (extension.get("pool"), extension.get("connect"), extension.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:  # a handful of distinct values per provider (one per route's timeouts)
            pool, connect, read = key
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, connect=pool, sock_connect=connect, sock_read=read
            )
        return timeout

    def pool_state(self) -> PoolState:
        connector = self._session.connector if self._session is not None else None
        if connector is None or connector.closed:
            return PoolState(0, 0)
        assert isinstance(connector, aiohttp.TCPConnector)
        # aiohttp keeps lent connections in `_acquired` and idle ones per host in `_conns`.
        idle = sum(len(queue) for queue in connector._conns.values())
        return PoolState(len(connector._acquired), idle)

    async def send(
        self, url: str, headers: list[tuple[str, str]], content: bytes, timeout: dict[str, float | None]
    ) -> AiohttpResponse:
        """POST without httpx's request and response models: the providers' hot path. `headers` must
        not hold Host or Content-Length (aiohttp sets them); the answer is decompressed by aiohttp."""
        session = self._session
        if session is None:
            session = self._session = self._open()
        with map_aiohttp_errors():
            response = await session.request(
                "POST",
                url,
                headers=headers,
                data=content,
                allow_redirects=False,
                timeout=self._timeout(timeout),
                auto_decompress=True,
            )
        return AiohttpResponse(response)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session
        if session is None:
            session = self._session = self._open()
        with map_aiohttp_errors(request):
            response = await session.request(
                request.method,
                str(request.url),
                headers=[(k, v) for k, v in request.headers.multi_items() if k not in _SET_BY_AIOHTTP],
                data=request.content,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
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
