"""A client that leaves a non-streaming request cancels its upstream request: the upstream connection is
closed at once (not when the answer comes or the read timeout passes), the request is recorded as 499,
and the gateway serves the next request normally."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.harness import CLIENT_TIMEOUT, running_gateway, wait_until
from tests.support.resilience_support import MODEL, provider, route, write_gateway_config
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(60)


def send_and_leave(port: int, path: str, body: dict[str, object], after: float) -> None:
    """POST on a raw socket, then close it `after` seconds later without reading the answer."""
    payload = orjson.dumps(body)
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + payload)
        time.sleep(after)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/messages", {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
    ],
)
def test_a_client_gone_at_half_a_second_closes_the_upstream_request(
    simulator: ProviderSimulator,
    write_routes: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
    path: str,
    body: dict[str, object],
) -> None:
    simulator.enqueue(Behaviour(head_delay=5.0))  # an answer that would come only after 5 s
    config = write_gateway_config(write_routes, {"a": provider(simulator.base_url)}, {"r": route("a")})
    caplog.set_level(logging.INFO, logger="gateway.access_log")
    with running_gateway(config) as gateway:
        send_and_leave(gateway.port, path, body, after=0.5)
        left = time.monotonic()
        wait_until(lambda: simulator.open_connections == 0, timeout=1.0)
        assert time.monotonic() - left < 1.0  # closed at once, not at 5 s
        (request,) = simulator.requests
        wait_until(lambda: request.outcome == "client_closed", timeout=1.0)
        wait_until(lambda: "status=499" in caplog.text, timeout=1.0)
        simulator.default = Behaviour()
        with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
            assert client.post(path, json=body).status_code == 200
