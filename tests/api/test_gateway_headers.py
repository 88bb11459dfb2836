"""The gateway's own response headers: a stream's head (ASGI pairs) carries the same as a whole answer."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.api.recording import gateway_headers, raw_gateway_headers
from gateway.resilience.dispatch import RequestContext


@pytest.mark.parametrize("provider", [None, "openai-eu"])
def test_a_streams_headers_are_the_whole_answers_as_pairs(provider: str | None) -> None:
    match: Any = None  # not read by either
    ctx = RequestContext(request_id="req-1", match=match, body={}, stream=True, attempts=2, provider=provider)
    expected = [(name.encode(), value.encode()) for name, value in gateway_headers(ctx).items()]
    assert raw_gateway_headers(ctx) == expected
