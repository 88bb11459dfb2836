"""The httpx transport face of the H1 client: `send` for the providers' hot path, `handle_async_request`
for everything that goes through the provider's `httpx.AsyncClient` (health probes)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from gateway.providers.h1.connection import H1Response
from gateway.providers.h1.pool import Pool, PoolState
from gateway.providers.h1.target import Target, parse_target

# Bodies we can decode; a provider must not answer in an encoding we did not offer.
ACCEPT_ENCODING = "gzip, deflate"


class H1Transport(httpx.AsyncBaseTransport):
    """One pool per provider. Pool limits are httpx's: `max_connections` (None: unlimited) bounds
    connections open or opening, `max_keepalive_connections` the idle ones kept, `keepalive_expiry` how
    long an idle one is kept. Timeouts come from httpx's `timeout` extension per request: `pool` bounds the
    wait for a free connection slot, `connect` the TCP and TLS handshake, `read` each wait for bytes
    (the response head included). There is no write timeout: request bodies are small, written at once.
    """

    def __init__(self, limits: httpx.Limits) -> None:
        self._pool = Pool(limits)
        self._targets: dict[str, Target] = {}

    def target(self, url: str) -> Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) > 64:  # a handful of URLs per provider; never unbounded
                self._targets.clear()
            target = self._targets[url] = parse_target(url)
        return target

    async def send(
        self, url: str, headers: list[tuple[str, str]], content: bytes, timeout: dict[str, float | None]
    ) -> H1Response:
        """POST without httpx's request and response models: the providers' hot path. `headers` must not
        hold Host or Content-Length (set here); the answer's body comes decompressed."""
        return await self._pool.request(b"POST", self.target(url), headers, content, timeout, decompress=True)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content = await request.aread()
        headers = [(k, v) for k, v in request.headers.multi_items() if k not in _SET_HERE]
        response = await self._pool.request(
            request.method.encode("ascii"),
            self.target(str(request.url)),
            headers,
            content,
            request.extensions.get("timeout", {}),
            decompress=False,  # httpx's response decodes `content-encoding` itself
        )
        return httpx.Response(
            response.status_code,
            headers=response.raw_headers,
            stream=_ByteStream(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def pool_state(self) -> PoolState:
        return self._pool.state()

    async def aclose(self) -> None:
        self._pool.close()


# Headers this client computes itself.
_SET_HERE = frozenset(("host", "content-length", "transfer-encoding"))


class _ByteStream(httpx.AsyncByteStream):
    __slots__ = ("_response",)

    def __init__(self, response: H1Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_bytes():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()
