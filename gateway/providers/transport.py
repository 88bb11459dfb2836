"""The boundary with httpx: build each provider's client, and translate httpx exceptions into ours.

Nothing outside `gateway.providers` sees an httpx exception (`h1/` raises httpx's too).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from gateway.config.models import PoolLimits, Timeouts
from gateway.errors import (
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamReadError,
    UpstreamTimeout,
)
from gateway.providers.h1 import H1Transport


@contextmanager
def map_upstream_errors(provider: str) -> Iterator[None]:
    """Turn httpx transport exceptions into the gateway's `UpstreamError` tree."""
    try:
        yield
    except httpx.TimeoutException as exc:
        kind = type(exc).__name__.replace("Timeout", "").lower() or "request"
        raise UpstreamTimeout(f"provider {provider!r} timed out ({kind} timeout)") from exc
    except httpx.ConnectError as exc:
        raise UpstreamConnectError(f"could not connect to provider {provider!r}: {exc}") from exc
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError, httpx.CloseError) as exc:
        raise UpstreamReadError(
            f"connection to provider {provider!r} failed: {exc or type(exc).__name__}"
        ) from exc
    except httpx.HTTPError as exc:
        raise UpstreamProtocolError(f"provider {provider!r}: {exc or type(exc).__name__}") from exc


def httpx_timeout(timeouts: Timeouts) -> httpx.Timeout:
    # httpx's `read` is the longest wait for bytes: exactly our inter-byte `read` timeout.
    return httpx.Timeout(
        connect=timeouts.connect,
        read=timeouts.read,
        write=timeouts.write,
        pool=timeouts.connect,
    )


def httpx_limits(pool: PoolLimits) -> httpx.Limits:
    return httpx.Limits(
        max_connections=pool.max_connections,
        max_keepalive_connections=pool.max_keepalive_connections,
        keepalive_expiry=pool.keepalive_expiry,
    )


def build_client(
    *,
    timeouts: Timeouts,
    pool: PoolLimits,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """One pooled client per provider. `trust_env=False`: a proxy variable must not reroute upstreams.

    Without an explicit `transport` (tests, the in-process mock) requests go over the H1 pool."""
    limits = httpx_limits(pool)
    return httpx.AsyncClient(
        timeout=httpx_timeout(timeouts),
        limits=limits,
        transport=transport if transport is not None else H1Transport(limits),
        trust_env=False,
        follow_redirects=False,
    )
