"""The H1 client as an `UpstreamTransport`: one pool per provider."""

from __future__ import annotations

from gateway.config.models import PoolLimits
from gateway.providers.h1.connect import Connector, ProxyChoice
from gateway.providers.h1.connection import H1Response
from gateway.providers.h1.pool import Pool
from gateway.providers.h1.target import Target, parse_target
from gateway.providers.transport import PoolState, WireRequest

# Bodies we can decode; a provider must not answer in an encoding we did not offer.
ACCEPT_ENCODING = "gzip, deflate"


class H1Transport:
    """Pool limits: `max_connections` bounds connections open or opening, `max_keepalive_connections` the
    idle ones kept, `keepalive_expiry` how long an idle one is kept, `acquire_timeout` the wait for a free
    connection slot. Per request (`WireTimeouts`): `connect` bounds the TCP (and proxy, and TLS)
    handshake, `read` each wait for bytes (the response head included). Answers come decompressed."""

    def __init__(
        self, limits: PoolLimits, connector: Connector | None = None, proxies: ProxyChoice | None = None
    ) -> None:
        self._pool = Pool(limits, connector)
        self._proxies = proxies
        self._targets: dict[str, Target] = {}

    def target(self, url: str) -> Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) > 64:  # a handful of URLs per provider; never unbounded
                self._targets.clear()
            target = self._targets[url] = parse_target(url, self._proxies)
        return target

    async def send(self, request: WireRequest) -> H1Response:
        return await self._pool.request(
            request.method.encode("ascii"),
            self.target(request.url),
            request.headers,
            request.content,
            request.timeouts,
        )

    def pool_state(self) -> PoolState:
        return self._pool.state()

    async def aclose(self) -> None:
        self._pool.close()
