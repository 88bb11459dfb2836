"""Provider kinds and the transport seam: each kind's URLs, headers and transport; requests and health
probes through one transport (and pool) against the provider simulator on a real socket."""

from __future__ import annotations

import orjson
import pytest

from gateway.config.models import HealthCheck, MockOptions, ProviderConfig
from gateway.errors import UpstreamStatusError
from gateway.providers.base import Provider
from gateway.providers.h1 import H1Transport
from gateway.providers.kinds import KINDS
from gateway.providers.mock import MockTransport
from gateway.providers.registry import new_provider
from gateway.providers.transport import PoolState, WireRequest, WireTimeouts
from gateway.translate.openai_errors import read_openai_error
from tests.support.simulator import ProviderSimulator
from tests.support.simulator_behaviour import Behaviour


@pytest.mark.parametrize(
    ("kind", "base", "chat", "health"),
    [
        ("openai", "https://api.deepseek.com/v1", "https://api.deepseek.com/v1/chat/completions",
         "https://api.deepseek.com/v1/models"),
        ("ollama", "http://localhost:11434", "http://localhost:11434/v1/chat/completions",
         "http://localhost:11434/api/tags"),
        ("ollama", "http://gpu:11434/v1", "http://gpu:11434/v1/chat/completions", "http://gpu:11434/api/tags"),
        ("mock", "http://mock.gateway.invalid/v1", "http://mock.gateway.invalid/v1/chat/completions",
         "http://mock.gateway.invalid/v1/models"),
    ],
)  # fmt: skip
def test_each_kind_knows_its_urls(kind: str, base: str, chat: str, health: str) -> None:
    entry = KINDS[kind]  # type: ignore[index]
    assert (entry.endpoints["openai.chat"](base), entry.health_url(base, "/models")) == (chat, health)
    assert entry.health_url(base.removesuffix("/v1"), "/healthz").endswith("/healthz")


def test_every_kind_builds_its_own_transport() -> None:
    real = new_provider(ProviderConfig(name="r", type="openai", base_url="http://r.test/v1"))
    mock = new_provider(ProviderConfig(name="m", type="mock", base_url="http://mock.gateway.invalid/v1"))
    missing = new_provider(
        ProviderConfig(name="k", type="openai", base_url="http://k.test/v1", unavailable_reason="no key")
    )
    assert isinstance(real.transport, H1Transport) and isinstance(mock.transport, MockTransport)
    assert missing.transport is None and not missing.available
    assert missing.pool_state() == PoolState(0, 0)


async def test_the_mock_transport_answers_in_process() -> None:
    transport = MockTransport(MockOptions(tokens=3))
    timeouts = WireTimeouts()
    body = orjson.dumps({"model": "mock", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    response = await transport.send(WireRequest("POST", "http://m/v1/chat/completions", [], body, timeouts))
    assert (response.status_code, response.complete) == (200, False)
    events = (await response.aread()).split(b"\n\n")
    assert events[-2:] == [b"data: [DONE]", b""] and len(events) == 1 + 3 + 1 + 1 + 1
    assert response.complete
    missing = await transport.send(WireRequest("GET", "http://m/v1/nothing", [], b"", timeouts))
    assert missing.status_code == 404 and b"not_found" in await missing.aread()
    assert transport.pool_state() == PoolState(0, 0)


def sim_provider(sim: ProviderSimulator, **config: object) -> Provider:
    return new_provider(
        ProviderConfig(name="sim", type="openai", base_url=sim.base_url, api_key="sk-sim", **config)  # type: ignore[arg-type]
    )


async def test_requests_and_probes_share_one_transport_and_its_pool(simulator: ProviderSimulator) -> None:
    async def scenario() -> tuple[int, int, PoolState]:
        provider = sim_provider(simulator, health_check=HealthCheck(path="/models", timeout=5.0))
        try:
            body = orjson.dumps({"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]})
            reply = await provider.complete(provider.build_request(body, "req-1"), read_openai_error)
            status = await provider.probe()
            return reply.status_code, status, provider.pool_state()
        finally:
            await provider.aclose()

    chat_status, probe_status, pool = await scenario()
    assert (chat_status, probe_status) == (200, 200)
    assert pool == PoolState(in_use=0, idle=1)  # the probe reused the request's connection, and gave it back
    chat, probe = simulator.requests
    assert (chat.method, chat.path, probe.method, probe.path) == (
        "POST",
        "/v1/chat/completions",
        "GET",
        "/v1/models",
    )
    assert chat.connection_id == probe.connection_id
    assert probe.headers["authorization"] == "Bearer sk-sim" and "content-type" not in probe.headers
    assert chat.headers["user-agent"].startswith("gateway/")
    assert chat.headers["x-request-id"] == "req-1"


async def test_an_upstream_error_answer_is_read_by_the_translator(simulator: ProviderSimulator) -> None:
    simulator.enqueue(Behaviour(status=429, headers={"Retry-After": "2"}, error_message="slow down"))

    async def scenario() -> UpstreamStatusError:
        provider = sim_provider(simulator)
        try:
            with pytest.raises(UpstreamStatusError) as caught:
                await provider.complete(provider.build_request(b"{}", ""), read_openai_error)
            return caught.value
        finally:
            await provider.aclose()

    error = await scenario()
    assert (error.status_code, error.message, error.headers) == (429, "slow down", {"retry-after": "2"})


@pytest.mark.parametrize(
    ("kind", "base", "messages"),
    [
        ("anthropic", "https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("openai", "https://api.deepseek.com/anthropic", "https://api.deepseek.com/anthropic/v1/messages"),
        ("ollama", "http://localhost:11434", "http://localhost:11434/v1/messages"),
        ("ollama", "http://gpu:11434/v1", "http://gpu:11434/v1/messages"),
    ],
)
def test_each_kind_knows_its_messages_url(kind: str, base: str, messages: str) -> None:
    assert KINDS[kind].endpoints["anthropic.messages"](base) == messages  # type: ignore[index]
