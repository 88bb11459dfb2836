"""`map_upstream_errors()`: each httpx exception becomes one of ours, raised `from` it; anything else
passes unchanged. One instance may be entered again and again (a provider keeps one)."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from gateway.errors import (
    UpstreamAddressRefused,
    UpstreamCapacity,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamReadError,
    UpstreamTimeout,
)
from gateway.providers.error_mapping import map_upstream_errors
from gateway.providers.h1.connect import AddressRefused


@pytest.mark.parametrize(
    ("raised", "expected", "message"),
    [
        (httpx.PoolTimeout("full"), UpstreamCapacity, "provider 'up' is at capacity: full"),
        (AddressRefused("10.0.0.1"), UpstreamAddressRefused, "refused by the SSRF guard: 10.0.0.1"),
        (httpx.ReadTimeout("slow"), UpstreamTimeout, "provider 'up' timed out (read timeout)"),
        (httpx.TimeoutException("slow"), UpstreamTimeout, "timed out (exception timeout)"),
        (httpx.ConnectError("refused"), UpstreamConnectError, "could not connect to provider 'up': refused"),
        (httpx.ProxyError("no"), UpstreamConnectError, "could not connect to provider 'up': no"),
        (httpx.ReadError("reset"), UpstreamReadError, "connection to provider 'up' failed: reset"),
        (httpx.RemoteProtocolError("closed"), UpstreamReadError, "provider 'up' failed: closed"),
        (httpx.DecodingError("bad gzip"), UpstreamProtocolError, "provider 'up': bad gzip"),
    ],
)
def test_each_httpx_error_becomes_ours_chained_from_it(
    raised: httpx.HTTPError, expected: type[UpstreamError], message: str
) -> None:
    errors = map_upstream_errors("up")
    for _ in range(2):  # one instance is entered again and again (a provider keeps one)
        with pytest.raises(expected, match=re.escape(message)) as caught, errors:
            raise raised
        assert type(caught.value) is expected
        assert caught.value.__cause__ is raised


def test_other_exceptions_pass_unchanged() -> None:
    with pytest.raises(StopAsyncIteration), map_upstream_errors("up"):
        raise StopAsyncIteration
    with pytest.raises(asyncio.CancelledError), map_upstream_errors("up"):
        raise asyncio.CancelledError
    with map_upstream_errors("up"):
        pass
