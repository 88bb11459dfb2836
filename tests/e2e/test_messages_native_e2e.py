"""Anthropic Messages end to end over real sockets, with an upstream that speaks Messages (the provider
simulator as `type: anthropic`):

- the official `anthropic` SDK through the gateway, natively: the upstream gets the client's body bytes
  and its anthropic-* headers unchanged, and the client gets the upstream's events and errors;
- the official `openai` SDK through the gateway to the same upstream: chat translated to Messages.

Every stream is held to Anthropic's published event shapes (tests/support/anthropic_shapes.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support.anthropic_shapes import StreamEndedWithError, validate_message, validate_stream
from tests.support.harness import CLIENT_TIMEOUT, running_gateway, write_config
from tests.support.simulator import Behaviour, ProviderSimulator

UPSTREAM_KEY = "sk-ant-sim"
HELLO: Any = [{"role": "user", "content": "Hello"}]
WEATHER = {"name": "get_weather", "input": {"city": "Paris", "unit": "celsius"}}
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def routes_yaml(messages_url: str, chat_url: str) -> str:
    return f"""\
providers:
  claude:
    type: anthropic
    base_url: {messages_url}
    api_key: ${{SIM_ANTHROPIC_KEY:-{UPSTREAM_KEY}}}
    health_check: {{enabled: false}}
  backup:
    type: openai
    base_url: {chat_url}
    api_key: ${{SIM_API_KEY:-sim-key}}
    health_check: {{enabled: false}}
routes:
  claude-sim:
    targets: [{{provider: claude}}]
  claude-renamed:
    targets: [{{provider: claude, model: claude-upstream-name}}]
  claude-failover:
    targets: [{{provider: claude}}, {{provider: backup}}]
"""


@pytest.fixture
def anthropic_sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(api_key=UPSTREAM_KEY) as sim:
        sim.default = Behaviour(text="Hello from Claude", stamp=False)
        yield sim


@pytest.fixture
def gateway(anthropic_sim: ProviderSimulator, simulator: ProviderSimulator, tmp_path: Path) -> Iterator[str]:
    config = write_config(tmp_path, routes_yaml(anthropic_sim.root_url, simulator.base_url))
    with running_gateway(config) as gw:
        yield gw.base_url


@pytest.fixture
def client(gateway: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key="unused", max_retries=0, timeout=20.0)


def test_body_and_headers_reach_the_upstream_unchanged(
    gateway: str, anthropic_sim: ProviderSimulator
) -> None:
    # Odd but valid JSON (spacing, key order, a unicode escape): re-serialising would change these bytes.
    body = b'{ "max_tokens" : 32,"model":"claude-sim",  "messages":[{"role":"user","content":"caf\\u00e9"}]}'
    headers = {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
    }
    response = httpx.post(
        f"{gateway}/v1/messages?beta=true", content=body, headers=headers, timeout=CLIENT_TIMEOUT
    )
    assert response.status_code == 200, response.text
    validate_message(response.json())
    sent = anthropic_sim.messages_requests[-1]
    assert sent.body == body
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == headers["anthropic-beta"]
    assert sent.headers["x-api-key"] == UPSTREAM_KEY  # the provider's key, not the client's
    assert "authorization" not in sent.headers
    assert response.json()["content"][0]["text"] == "Hello from Claude"
    # A route that renames the model changes that field alone.
    response = httpx.post(f"{gateway}/v1/messages", content=body.replace(b"claude-sim", b"claude-renamed"),
                          headers=headers, timeout=CLIENT_TIMEOUT)  # fmt: skip
    assert response.status_code == 200
    sent_json = json.loads(anthropic_sim.messages_requests[-1].body)
    assert sent_json == {**json.loads(body), "model": "claude-upstream-name"}


def test_sdk_create_and_stream_text(client: anthropic.Anthropic, anthropic_sim: ProviderSimulator) -> None:
    message = client.messages.create(model="claude-sim", max_tokens=64, messages=HELLO)
    assert message.content[0].text == "Hello from Claude"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    with client.messages.stream(model="claude-sim", max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from Claude" and final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert anthropic_sim.messages_requests[-1].json["stream"] is True


def test_stream_tool_use_with_partial_json(
    client: anthropic.Anthropic, anthropic_sim: ProviderSimulator
) -> None:
    anthropic_sim.enqueue(Behaviour(tool_use=WEATHER, thinking="Look it up.", stamp=False))
    with client.messages.stream(
        model="claude-sim", max_tokens=256, messages=HELLO, tools=[WEATHER_TOOL]
    ) as stream:
        partials = [event.partial_json for event in stream if event.type == "input_json"]
        final = stream.get_final_message()
    assert len(partials) > 1  # the arguments came in pieces, as the upstream sent them
    tool = next(block for block in final.content if block.type == "tool_use")
    assert (tool.name, tool.input) == ("get_weather", WEATHER["input"])
    assert final.content[0].type == "thinking" and final.content[0].signature  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"


def test_raw_stream_holds_to_anthropic_shapes(gateway: str, anthropic_sim: ProviderSimulator) -> None:
    anthropic_sim.enqueue(Behaviour(tool_use=[WEATHER, {"name": "get_time", "input": {}}], stamp=False))
    body = {"model": "claude-sim", "max_tokens": 64, "stream": True, "messages": HELLO}
    with httpx.stream("POST", f"{gateway}/v1/messages", json=body, timeout=CLIENT_TIMEOUT) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read()
    message = validate_stream(raw)
    assert [block["type"] for block in message["content"]] == ["text", "tool_use", "tool_use"]


def test_count_tokens_is_asked_of_anthropic(gateway: str, anthropic_sim: ProviderSimulator) -> None:
    sdk = anthropic.Anthropic(base_url=gateway, api_key="unused", max_retries=0)
    counted = sdk.messages.count_tokens(model="claude-sim", messages=HELLO)
    assert counted.input_tokens >= 1
    assert anthropic_sim.requests[-1].path.endswith("/v1/messages/count_tokens")


def test_upstream_errors_keep_their_type(
    client: anthropic.Anthropic, anthropic_sim: ProviderSimulator
) -> None:
    anthropic_sim.enqueue(Behaviour(status=429, headers={"Retry-After": "3"}))
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="claude-sim", max_tokens=8, messages=HELLO)
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    anthropic_sim.enqueue(Behaviour(status=529))
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        client.messages.create(model="claude-sim", max_tokens=8, messages=HELLO)
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_an_error_after_the_first_byte_is_one_error_event(
    gateway: str, anthropic_sim: ProviderSimulator
) -> None:
    anthropic_sim.enqueue(Behaviour(tokens=6, drop_after=4, stamp=False))
    body = {"model": "claude-sim", "max_tokens": 64, "stream": True, "messages": HELLO}
    with httpx.stream("POST", f"{gateway}/v1/messages", json=body, timeout=CLIENT_TIMEOUT) as response:
        raw = response.read()
    with pytest.raises(StreamEndedWithError) as ended:
        validate_stream(raw)
    assert ended.value.error["error"]["type"] == "api_error"
    assert raw.count(b"event: error") == 1


def test_failover_before_the_first_byte(
    gateway: str, anthropic_sim: ProviderSimulator, simulator: ProviderSimulator
) -> None:
    anthropic_sim.enqueue(Behaviour(status=503))
    simulator.default = Behaviour(text="from the backup", stamp=False)
    body = {"model": "claude-failover", "max_tokens": 64, "stream": True, "messages": HELLO}
    with httpx.stream("POST", f"{gateway}/v1/messages", json=body, timeout=CLIENT_TIMEOUT) as response:
        raw = response.read()
        assert response.headers["x-gateway-provider"] == "backup"
    message = validate_stream(raw)  # translated from the chat backup, same shapes
    assert message["content"][0]["text"] == "from the backup"
    assert simulator.chat_requests[-1].json["model"] == "claude-failover"


def test_openai_sdk_reaches_a_messages_upstream(gateway: str, anthropic_sim: ProviderSimulator) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0, timeout=20.0)
    reply = client.chat.completions.create(model="claude-sim", messages=HELLO)
    assert reply.choices[0].message.content == "Hello from Claude"
    assert reply.choices[0].finish_reason == "stop"
    sent = anthropic_sim.messages_requests[-1]
    assert sent.json["max_tokens"] == 4096  # the route's default_max_tokens: chat need not send one
    assert sent.json["messages"] == HELLO
    assert sent.headers["anthropic-version"] == "2023-06-01"

    chunks = list(client.chat.completions.create(model="claude-sim", messages=HELLO, stream=True))
    assert (
        "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
        == "Hello from Claude"
    )

    anthropic_sim.enqueue(Behaviour(tool_use=WEATHER, stamp=False))
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    with client.chat.completions.stream(model="claude-sim", messages=HELLO, tools=tools) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == WEATHER["input"]  # type: ignore[union-attr]
    assert final.choices[0].finish_reason == "tool_calls"
    assert anthropic_sim.messages_requests[-1].json["tools"][0]["name"] == "get_weather"

    anthropic_sim.enqueue(Behaviour(status=529))
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="claude-sim", messages=HELLO)
    assert failed.value.status_code == 529
