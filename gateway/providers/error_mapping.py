"""The boundary with httpx's exceptions: transports raise them (`h1/` too), providers translate them.

Nothing outside `gateway.providers` sees an httpx exception.
"""

from __future__ import annotations

from types import TracebackType
from typing import NoReturn

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


class map_upstream_errors:  # lower case: called like a function, as `contextlib.suppress` is
    """Turn httpx transport exceptions into the gateway's `UpstreamError` tree (raised `from` them).

    A class rather than a `@contextmanager` generator: it is entered per request (and per upstream read
    of a stream), where a generator and its frame each time are measurable. Holds no state but the
    provider's name, so one instance may be kept and entered again and again."""

    __slots__ = ("provider",)

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if isinstance(exc, httpx.HTTPError):
            raise_upstream_error(exc, self.provider)


def raise_upstream_error(exc: httpx.HTTPError, provider: str) -> NoReturn:
    """Raise ours for an httpx exception, most specific first. The new error is never bound to a name:
    its traceback holds this frame, and a local holding it would make a reference cycle."""
    if isinstance(exc, httpx.PoolTimeout):
        raise UpstreamCapacity(f"provider {provider!r} is at capacity: {exc}") from exc
    if isinstance(exc, AddressRefused):
        raise UpstreamAddressRefused(f"provider {provider!r} refused by the SSRF guard: {exc}") from exc
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__.replace("Timeout", "").lower() or "request"
        raise UpstreamTimeout(f"provider {provider!r} timed out ({kind} timeout)") from exc
    if isinstance(exc, httpx.ConnectError | httpx.ProxyError):  # nothing reached the provider
        raise UpstreamConnectError(f"could not connect to provider {provider!r}: {exc}") from exc
    if isinstance(exc, httpx.ReadError | httpx.RemoteProtocolError | httpx.WriteError | httpx.CloseError):
        raise UpstreamReadError(
            f"connection to provider {provider!r} failed: {exc or type(exc).__name__}"
        ) from exc
    raise UpstreamProtocolError(f"provider {provider!r}: {exc or type(exc).__name__}") from exc
