"""`/v1/responses` passed through to an upstream that speaks Responses (the provider simulator's Responses
mode as an `openai` provider with `apis: {responses: true}`), over real sockets with the official SDK:

- the client's body bytes arrive unchanged (only a renamed model changes) and the OpenAI-Beta /
  -Organization / -Project headers with them; a chat target (translated) gets none of those headers;
- the answer and the stream's events come back as the upstream wrote them, so the SDK's stream helper
  builds its final response, function tool round trips included;
- a failing native target (503) fails over to the next one; a failure after the first event reaches the
  client as `response.failed` (the upstream's own) or as the gateway's `error` event (a cut connection).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.harness import CLIENT_TIMEOUT, running_gateway, write_config
from tests.support.responses_schemas import validate_response, validate_stream_event
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.sse_reader import parse_sse

pytestmark = pytest.mark.timeout(60)

UPSTREAM_KEY = "sim-key"  # the providers' key (${SIM_API_KEY:-sim-key}); the simulators check it
WEATHER = {"name": "get_weather", "input": {"city": "Paris"}}
WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
SELECTING_HEADERS = {
    "OpenAI-Beta": "responses=v1",
    "OpenAI-Organization": "org-sim",
    "OpenAI-Project": "proj_sim",
}


def routes_yaml(native_url: str, second_url: str, chat_url: str) -> str:
    return f"""\
providers:
  native:
    type: openai
    base_url: {native_url}
    api_key: ${{SIM_API_KEY:-{UPSTREAM_KEY}}}
    apis: {{chat: true, responses: true}}
    health_check: {{enabled: false}}
  second:
    type: openai
    base_url: {second_url}
    api_key: ${{SIM_API_KEY:-{UPSTREAM_KEY}}}
    apis: {{chat: true, responses: true}}
    health_check: {{enabled: false}}
  chat_only:
    type: openai
    base_url: {chat_url}
    api_key: ${{SIM_API_KEY:-{UPSTREAM_KEY}}}
    health_check: {{enabled: false}}
routes:
  gpt-native:
    targets: [{{provider: native}}]
  gpt-renamed:
    targets: [{{provider: native, model: gpt-upstream-name}}]
  gpt-failover:
    targets: [{{provider: native}}, {{provider: second}}]
  gpt-chat:
    targets: [{{provider: chat_only}}]
"""


@pytest.fixture
def native() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(api_key=UPSTREAM_KEY) as sim:
        yield sim


@pytest.fixture
def second() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(api_key=UPSTREAM_KEY) as sim:
        yield sim


@pytest.fixture
def chat_upstream() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(api_key=UPSTREAM_KEY) as sim:
        yield sim


@pytest.fixture
def gateway(
    native: ProviderSimulator, second: ProviderSimulator, chat_upstream: ProviderSimulator, tmp_path: Path
) -> Iterator[str]:
    config = write_config(tmp_path, routes_yaml(native.base_url, second.base_url, chat_upstream.base_url))
    with running_gateway(config) as gw:
        yield gw.base_url


@pytest.fixture
def client(gateway: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0, timeout=20.0) as sdk:
        yield sdk


def stream_events(gateway: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The gateway's stream for `body`, as parsed events (each SSE name checked against its `type`)."""
    with httpx.stream("POST", f"{gateway}/v1/responses", json=body, timeout=CLIENT_TIMEOUT) as response:
        assert response.status_code == 200
        text = response.read().decode()
    events = parse_sse(text)[0]
    payloads = [event.json() for event in events]
    assert [event.event for event in events] == [payload["type"] for payload in payloads]
    return payloads


def test_body_bytes_and_selecting_headers_reach_the_native_target(
    gateway: str, native: ProviderSimulator
) -> None:
    # Odd but valid JSON (spacing, key order, a unicode escape): re-serialising would change these bytes.
    raw = b'{"model":"gpt-native",   "input": "caf\\u00e9 au lait", "store": false, "x_sim": {"tokens": 2}}'
    headers = {"content-type": "application/json", "authorization": "Bearer client-key", **SELECTING_HEADERS}
    answer = httpx.post(f"{gateway}/v1/responses", content=raw, headers=headers, timeout=CLIENT_TIMEOUT)

    assert answer.status_code == 200, answer.text
    validate_response(answer.json())
    assert answer.json()["output"][0]["content"][0]["text"] == "word0 word1 "
    [sent] = native.responses_requests
    assert sent.body == raw  # byte for byte
    assert sent.path == "/v1/responses"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"  # the provider's key, not the client's
    for name, value in SELECTING_HEADERS.items():
        assert sent.headers[name.lower()] == value
    assert native.chat_requests == []

    renamed = httpx.post(
        f"{gateway}/v1/responses", content=raw.replace(b"gpt-native", b"gpt-renamed"), headers=headers,
        timeout=CLIENT_TIMEOUT,
    )  # fmt: skip
    assert renamed.status_code == 200
    assert json.loads(native.responses_requests[-1].body) == {**json.loads(raw), "model": "gpt-upstream-name"}


def test_the_upstreams_answer_comes_back_unchanged(gateway: str, native: ProviderSimulator) -> None:
    written = b'{"id":"resp_up_1","object":"response","status":"completed","output":[],"x_vendor":{"a":1}}'
    native.enqueue(Behaviour(body=written.decode()))
    answer = httpx.post(
        f"{gateway}/v1/responses", json={"model": "gpt-native", "input": "hi"}, timeout=CLIENT_TIMEOUT
    )

    assert answer.status_code == 200
    assert answer.content == written


def test_selecting_headers_do_not_reach_a_chat_target(gateway: str, chat_upstream: ProviderSimulator) -> None:
    body = {"model": "gpt-chat", "input": "hi"}
    answer = httpx.post(
        f"{gateway}/v1/responses", json=body, headers=SELECTING_HEADERS, timeout=CLIENT_TIMEOUT
    )

    assert answer.status_code == 200, answer.text
    validate_response(answer.json())
    [sent] = chat_upstream.chat_requests
    assert chat_upstream.responses_requests == []
    for name in SELECTING_HEADERS:
        assert name.lower() not in sent.headers


def test_sdk_create_plain_and_streamed(client: openai.OpenAI, native: ProviderSimulator) -> None:
    answer = client.responses.create(model="gpt-native", input="hello there", instructions="be brief")
    assert (answer.id, answer.status) == ("resp_sim_1", "completed")
    assert answer.output_text == "word0 word1 word2 word3 word4 "
    assert answer.usage is not None and answer.usage.input_tokens == 4

    stream = client.responses.create(model="gpt-native", input="hello there", stream=True)
    with stream:
        events = list(stream)
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "word0 word1 word2 word3 word4 "
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert native.responses_requests[-1].json["stream"] is True


def test_stream_helper_builds_the_final_response(client: openai.OpenAI, native: ProviderSimulator) -> None:
    native.enqueue(Behaviour(text="native hello", thinking="first this"))
    with client.responses.stream(model="gpt-native", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()

    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds
    assert final.output_text == "native hello"
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 2


def test_function_tool_round_trip(client: openai.OpenAI, native: ProviderSimulator) -> None:
    native.enqueue(Behaviour(tokens=0, tool_use=WEATHER), Behaviour(text="It is sunny in Paris"))
    first = client.responses.create(model="gpt-native", input="weather in Paris?", tools=[WEATHER_TOOL])
    [call] = first.output
    assert call.type == "function_call"
    assert (call.name, json.loads(call.arguments)) == ("get_weather", WEATHER["input"])

    with client.responses.stream(
        model="gpt-native",
        tools=[WEATHER_TOOL],
        input=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'},
        ],
    ) as stream:
        final = stream.get_final_response()

    assert final.output_text == "It is sunny in Paris"
    sent = native.responses_requests[-1].json
    assert sent["input"][2] == {
        "type": "function_call_output",
        "call_id": "call_sim_1_0",
        "output": '{"sky": "sunny"}',
    }
    assert sent["tools"][0]["name"] == "get_weather"


def test_failover_from_a_failing_native_target(
    client: openai.OpenAI, native: ProviderSimulator, second: ProviderSimulator
) -> None:
    native.enqueue(Behaviour(status=503), Behaviour(status=503))
    second.default = Behaviour(text="from the second target")
    answer = client.responses.create(model="gpt-failover", input="hi")
    with client.responses.stream(model="gpt-failover", input="hi") as stream:
        final = stream.get_final_response()

    assert answer.output_text == final.output_text == "from the second target"
    assert len(native.responses_requests) == 2 and len(second.responses_requests) == 2
    assert second.responses_requests[0].json == {"model": "gpt-failover", "input": "hi"}


def test_upstream_response_failed_reaches_the_sdk(client: openai.OpenAI, native: ProviderSimulator) -> None:
    native.enqueue(Behaviour(error_after=5, error_message="the model crashed"))
    with client.responses.stream(model="gpt-native", input="hi") as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()

    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None
    assert (events[-1].response.error.code, events[-1].response.error.message) == (
        "server_error",
        "the model crashed",
    )
    assert "response.output_text.delta" in [event.type for event in events]


def test_connection_cut_after_the_first_event_ends_with_an_error_event(
    gateway: str, native: ProviderSimulator
) -> None:
    native.enqueue(Behaviour(drop_after=3))
    events = stream_events(gateway, {"model": "gpt-native", "input": "hi", "stream": True})

    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "error",
    ]
    for event in events:
        validate_stream_event(event)
    assert events[-1]["sequence_number"] == 3
    native.wait_for(lambda: native.responses_requests[-1].outcome == "dropped")


def test_sdk_reports_the_cut_as_an_error_event(client: openai.OpenAI, native: ProviderSimulator) -> None:
    native.enqueue(Behaviour(drop_after=5))
    with client.responses.stream(model="gpt-native", input="hi") as stream:
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()

    last = events[-1]
    assert last.type == "error"
    assert (last.code, last.sequence_number) == ("upstream_read_error", 5)
    assert "provider 'native'" in last.message and UPSTREAM_KEY not in last.message
