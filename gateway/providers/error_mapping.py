"""The boundary with httpx's exceptions: transports raise them (`h1/` too), providers translate them.

Nothing outside `gateway.providers` sees an httpx exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from gateway.errors import (
    UpstreamAddressRefused,
    UpstreamCapacity,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamReadError,
    UpstreamTimeout,
)
from gateway.providers.h1.connect import AddressRefused


@contextmanager
def map_upstream_errors(provider: str) -> Iterator[None]:
    """Turn httpx transport exceptions into the gateway's `UpstreamError` tree."""
    try:
        yield
    except httpx.PoolTimeout as exc:
        raise UpstreamCapacity(f"provider {provider!r} is at capacity: {exc}") from exc
    except AddressRefused as exc:
        raise UpstreamAddressRefused(f"provider {provider!r} refused by the SSRF guard: {exc}") from exc
    except httpx.TimeoutException as exc:
        kind = type(exc).__name__.replace("Timeout", "").lower() or "request"
        raise UpstreamTimeout(f"provider {provider!r} timed out ({kind} timeout)") from exc
    except (httpx.ConnectError, httpx.ProxyError) as exc:  # nothing reached the provider
        raise UpstreamConnectError(f"could not connect to provider {provider!r}: {exc}") from exc
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError, httpx.CloseError) as exc:
        raise UpstreamReadError(
            f"connection to provider {provider!r} failed: {exc or type(exc).__name__}"
        ) from exc
    except httpx.HTTPError as exc:
        raise UpstreamProtocolError(f"provider {provider!r}: {exc or type(exc).__name__}") from exc
