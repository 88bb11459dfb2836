"""The official `openai` SDK's Responses API against the running gateway, whose target speaks only chat
(the provider simulator): translated both ways, streams included, and stateless on purpose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.harness import CLIENT_TIMEOUT, running_gateway, write_config
from tests.support.simulator import Behaviour, ProviderSimulator

WEATHER = {"name": "get_weather", "input": {"city": "Paris"}}
TOOLS: Any = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


@pytest.fixture
def client(simulator: ProviderSimulator, tmp_path: Path) -> Iterator[openai.OpenAI]:
    routes = f"""\
providers:
  sim:
    type: openai
    base_url: {simulator.base_url}
    api_key: ${{SIM_API_KEY:-sim-key}}
    health_check: {{enabled: false}}
routes:
  sim-model:
    targets: [{{provider: sim}}]
"""
    with running_gateway(write_config(tmp_path, routes)) as gateway:
        yield openai.OpenAI(
            base_url=f"{gateway.base_url}/v1", api_key="x", timeout=CLIENT_TIMEOUT, max_retries=0
        )


def test_create_plain(client: openai.OpenAI, simulator: ProviderSimulator) -> None:
    simulator.default = Behaviour(text="Bonjour le monde", stamp=False)
    response = client.responses.create(
        model="sim-model", input="Say hello", instructions="Be French.", store=False
    )
    assert response.status == "completed"
    assert response.output_text == "Bonjour le monde"
    assert response.usage is not None and response.usage.output_tokens > 0
    sent = simulator.chat_requests[-1].json
    assert sent["messages"] == [
        {"role": "system", "content": "Be French."},
        {"role": "user", "content": "Say hello"},
    ]


def test_stream_ends_with_the_final_response(client: openai.OpenAI, simulator: ProviderSimulator) -> None:
    simulator.default = Behaviour(text="one two three", stamp=False)
    with client.responses.stream(model="sim-model", input="count") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert final.output_text == "one two three"


def test_function_tool_round_trip(client: openai.OpenAI, simulator: ProviderSimulator) -> None:
    simulator.enqueue(Behaviour(tool_use=WEATHER, text="", stamp=False))
    first = client.responses.create(model="sim-model", input="Weather in Paris?", tools=TOOLS)
    call = next(item for item in first.output if item.type == "function_call")
    assert (call.name, json.loads(call.arguments)) == ("get_weather", WEATHER["input"])
    simulator.enqueue(Behaviour(text="It is sunny", stamp=False))
    history: Any = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'},
    ]
    second = client.responses.create(model="sim-model", input=history, tools=TOOLS)
    assert second.output_text == "It is sunny"
    sent = simulator.chat_requests[-1].json["messages"]
    assert sent[1]["tool_calls"][0]["id"] == call.call_id
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": '{"sky": "sunny"}'}


def test_stateless_and_typed_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as stored:
        client.responses.create(model="sim-model", input="x", store=True)
    assert stored.value.param == "store" and "stateless" in str(stored.value)  # type: ignore[attr-defined]
    with pytest.raises(openai.BadRequestError) as previous:
        client.responses.create(model="sim-model", input="x", previous_response_id="resp_1")
    assert previous.value.param == "previous_response_id"  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="nope", input="x")
    with pytest.raises(openai.BadRequestError) as builtin:
        client.responses.create(model="sim-model", input="x", tools=[{"type": "web_search"}])
    assert builtin.value.param == "tools[0].type"  # type: ignore[attr-defined]
