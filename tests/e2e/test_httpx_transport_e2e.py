"""`transport: httpx`, the escape hatch for what the gateway's own client does not do: the same routes,
streams and failover behind the same seam, over httpx's pool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from gateway.api.state import app_state
from gateway.providers.httpx_adapter import HttpxTransport
from tests.support.harness import CLIENT_TIMEOUT, running_gateway
from tests.support.resilience_support import chat, dead_url, provider, route, write_gateway_config
from tests.support.simulator import ProviderSimulator


def test_a_provider_on_httpx_serves_answers_and_streams_and_fails_over(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    providers = {
        "down": provider(dead_url(), transport="httpx"),
        "sim": provider(simulator.base_url, transport="httpx", api_key="${SIM_KEY:-sk-sim}"),
    }
    config = write_gateway_config(write_routes, providers, {"chat": route("down", "sim")})
    with (
        running_gateway(config) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        runtime = app_state(gateway.app).running().holder.current
        sim = runtime.registry.get("sim")
        assert sim is not None and isinstance(sim.transport, HttpxTransport)
        answer = chat(client)
        streamed = chat(client, stream=True)
    assert answer.status_code == 200 and answer.json()["object"] == "chat.completion"
    assert answer.headers["x-gateway-provider"] == "sim" and answer.headers["x-gateway-attempts"] == "2"
    assert streamed.status_code == 200 and streamed.text.endswith("data: [DONE]\n\n")
    requests = simulator.chat_requests
    assert requests[0].headers["authorization"] == "Bearer sk-sim"
    assert requests[1].json["stream_options"] == {"include_usage": True}
