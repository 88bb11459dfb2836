"""The simulator's Anthropic Messages mode, driven by the official `anthropic` SDK over loopback, and
its output held to the vendored shape oracle (tests.support.anthropic_shapes), which is tested too."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.support.anthropic_shapes import (
    StreamEndedWithError,
    validate_count_tokens,
    validate_error,
    validate_message,
    validate_stream,
)
from tests.support.harness import CLIENT_TIMEOUT
from tests.support.openai_schemas import validate_chat_chunk, validate_chat_completion
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.sse_reader import parse_sse

pytestmark = pytest.mark.timeout(30)

KEY = "sk-ant-sim"
SDK_TIMEOUT = 20.0  # seconds (this SDK brings its own httpx fork, so not CLIENT_TIMEOUT)
MESSAGES = [{"role": "user", "content": "say three words"}]
WEATHER = {"name": "get_weather", "input": {"city": "Paris", "days": 3, "units": ["C", "F"]}}


def messages_body(stream: bool = False, **extra: object) -> dict:
    return {"model": "claude-sim", "max_tokens": 100, "messages": MESSAGES, "stream": stream, **extra}


@pytest.fixture
def keyed_simulator() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(api_key=KEY) as simulator:
        yield simulator


@pytest.fixture
def sdk(keyed_simulator: ProviderSimulator) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=keyed_simulator.root_url, api_key=KEY, max_retries=0, timeout=SDK_TIMEOUT
    ) as client:
        yield client


@pytest.fixture
def client(keyed_simulator: ProviderSimulator) -> Iterator[httpx.Client]:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=keyed_simulator.base_url, headers=headers, timeout=CLIENT_TIMEOUT) as client:
        yield client


def raw_stream(client: httpx.Client, body: dict) -> bytes:
    with client.stream("POST", "/messages", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return response.read()


# The SDK against the simulator.


def test_create_answers_a_message_and_records_the_request_unchanged(
    keyed_simulator: ProviderSimulator, sdk: anthropic.Anthropic
) -> None:
    message = sdk.messages.create(
        model="claude-sim",
        max_tokens=100,
        messages=[{"role": "user", "content": "say three words"}],
        extra_headers={"anthropic-beta": "tools-2024-04-04"},
    )

    assert message.id == "msg_sim_1"
    assert (message.role, message.model, message.stop_reason) == ("assistant", "claude-sim", "end_turn")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "word0 word1 word2 word3 word4 "
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3, 5)
    assert (message.usage.cache_creation_input_tokens, message.usage.cache_read_input_tokens) == (0, 0)
    [recorded] = keyed_simulator.messages_requests
    assert recorded.path == "/v1/messages"
    assert recorded.headers["anthropic-beta"] == "tools-2024-04-04"
    assert recorded.headers["anthropic-version"] == sdk.default_headers["anthropic-version"]
    assert json.loads(recorded.body) == recorded.json
    assert recorded.json["messages"] == [{"role": "user", "content": "say three words"}]
    assert keyed_simulator.chat_requests == []


def test_stream_text_accumulates_in_the_sdk(sdk: anthropic.Anthropic) -> None:
    with sdk.messages.stream(model="claude-sim", max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert text == "word0 word1 word2 word3 word4 "
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5


def test_stream_tool_use_and_thinking(keyed_simulator: ProviderSimulator, sdk: anthropic.Anthropic) -> None:
    keyed_simulator.enqueue(Behaviour(tokens=1, thinking="let me see", tool_use=WEATHER))
    with sdk.messages.stream(model="claude-sim", max_tokens=100, messages=MESSAGES) as stream:
        events = list(stream)
        final = stream.get_final_message()

    assert [block.type for block in final.content] == ["thinking", "text", "tool_use"]
    thinking, _, tool = final.content
    assert thinking.thinking == "let me see" and thinking.signature
    assert (tool.id, tool.name, tool.input) == ("toolu_sim_1_0", "get_weather", WEATHER["input"])
    assert final.stop_reason == "tool_use"
    fragments = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(fragments) == 3
    assert json.loads("".join(fragments)) == WEATHER["input"]


def test_several_tool_uses_in_a_message(keyed_simulator: ProviderSimulator, sdk: anthropic.Anthropic) -> None:
    keyed_simulator.enqueue(Behaviour(tokens=0, tool_use=[WEATHER, {"name": "now"}]))
    message = sdk.messages.create(model="claude-sim", max_tokens=100, messages=MESSAGES)

    assert [(block.type, block.id, block.input) for block in message.content] == [
        ("tool_use", "toolu_sim_1_0", WEATHER["input"]),
        ("tool_use", "toolu_sim_1_1", {}),
    ]
    assert message.stop_reason == "tool_use"


def test_max_tokens_caps_the_answer(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(model="claude-sim", max_tokens=2, messages=MESSAGES)

    assert message.content[0].text == "word0 word1 "
    assert (message.stop_reason, message.usage.output_tokens) == ("max_tokens", 2)


def test_count_tokens(keyed_simulator: ProviderSimulator, sdk: anthropic.Anthropic) -> None:
    counted = sdk.messages.count_tokens(
        model="claude-sim",
        system="be brief",
        messages=[{"role": "user", "content": [{"type": "text", "text": "one two three"}]}],
    )

    assert counted.input_tokens == 5
    assert keyed_simulator.messages_requests == []  # count_tokens is not a messages request


@pytest.mark.parametrize(
    ("status", "error_class", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_scripted_statuses_raise_the_sdks_typed_errors(
    keyed_simulator: ProviderSimulator,
    sdk: anthropic.Anthropic,
    status: int,
    error_class: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    keyed_simulator.enqueue(Behaviour(status=status, headers={"retry-after": "7"}))
    with pytest.raises(error_class) as caught:
        sdk.messages.create(model="claude-sim", max_tokens=10, messages=MESSAGES)

    assert caught.value.status_code == status
    validate_error(caught.value.body)
    assert caught.value.body["error"]["type"] == error_type
    assert caught.value.response.headers["retry-after"] == "7"


def test_error_event_mid_stream_raises_in_the_sdk(sdk: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        sdk.messages.stream(
            model="claude-sim",
            max_tokens=100,
            messages=MESSAGES,
            extra_body={"x_sim": {"error_after": 4}},
        ) as stream,
    ):
        for _ in stream:
            pass


# Auth, paths and errors in Anthropic's shape.


def test_messages_auth_is_x_api_key(keyed_simulator: ProviderSimulator) -> None:
    with httpx.Client(base_url=keyed_simulator.root_url, timeout=CLIENT_TIMEOUT) as client:
        wrong = client.post("/v1/messages", json=messages_body(), headers={"x-api-key": "nope"})
        right = client.post("/v1/messages?beta=true", json=messages_body(), headers={"x-api-key": KEY})
        chat_with_x_api_key = client.post(
            "/v1/chat/completions", json={"model": "m", "messages": MESSAGES}, headers={"x-api-key": KEY}
        )

    assert wrong.status_code == 401
    assert wrong.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }
    assert right.status_code == 200
    validate_message(right.json())
    assert chat_with_x_api_key.status_code == 401  # chat keeps Authorization: Bearer
    assert "type" not in chat_with_x_api_key.json()


def test_simulator_errors_on_messages_paths_have_anthropic_shape(client: httpx.Client) -> None:
    bad_json = client.post("/messages", content=b"{not json", headers={"content-type": "application/json"})
    unknown_path = client.post("/messages/batches", json={})
    wrong_method = client.get("/messages")
    bad_x_sim = client.post("/messages", json=messages_body(x_sim={"nope": 1}))

    for response, status in ((bad_json, 400), (unknown_path, 404), (wrong_method, 405), (bad_x_sim, 400)):
        assert response.status_code == status
        validate_error(response.json())
    assert unknown_path.json()["error"]["type"] == "not_found_error"
    assert "nope" in bad_x_sim.json()["error"]["message"]


def test_one_queue_scripts_chat_and_messages_in_arrival_order(
    keyed_simulator: ProviderSimulator, client: httpx.Client
) -> None:
    keyed_simulator.enqueue(Behaviour(status=429), Behaviour(status=503))
    first = client.post("/messages", json=messages_body())
    second = client.post(
        "/chat/completions",
        json={"model": "m", "messages": MESSAGES},
        headers={"authorization": f"Bearer {KEY}"},
    )

    assert (first.status_code, second.status_code) == (429, 503)
    assert first.json()["error"]["type"] == "rate_limit_error"
    assert "error" in second.json() and "type" not in second.json()  # OpenAI's shape on chat


# The simulator's output against the oracle.


def test_json_answers_pass_the_oracle(client: httpx.Client) -> None:
    validate_message(client.post("/messages", json=messages_body(x_sim={"thinking": "hmm"})).json())
    validate_message(client.post("/messages", json=messages_body(x_sim={"tool_use": WEATHER})).json())
    validate_count_tokens(client.post("/messages/count_tokens", json=messages_body()).json())


@pytest.mark.parametrize(
    "x_sim",
    [
        {},
        {"tokens": 0},
        {"thinking": "step one then two", "tool_use": [WEATHER, {"name": "now"}]},
        {"split": 1, "crlf": True, "ping_every": 2, "multiline_data": True},
        {"coalesce": 4, "chunked": False},
    ],
)
def test_streams_pass_the_oracle_and_add_up_to_the_json_answer(client: httpx.Client, x_sim: dict) -> None:
    streamed = validate_stream(raw_stream(client, messages_body(stream=True, x_sim=x_sim)))
    answered = client.post("/messages", json=messages_body(x_sim=x_sim)).json()

    validate_message(answered)

    def without_ids(message: dict) -> dict:
        return {**message, "id": "", "content": [{**block, "id": ""} for block in message["content"]]}

    assert without_ids(streamed) == without_ids(answered)


def test_stream_event_order_is_anthropics(client: httpx.Client) -> None:
    events, _ = parse_sse(raw_stream(client, messages_body(stream=True, x_sim={"tokens": 2})).decode())

    assert [event.event for event in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0].json()["message"]
    assert (start["stop_reason"], start["content"], start["usage"]["output_tokens"]) == (None, [], 1)
    assert events[6].json()["usage"] == {"output_tokens": 2}


def test_faults_apply_to_messages_streams(keyed_simulator: ProviderSimulator, client: httpx.Client) -> None:
    keyed_simulator.enqueue(Behaviour(drop_after=3))
    with pytest.raises(httpx.RemoteProtocolError):
        raw_stream(client, messages_body(stream=True))
    error_stream = raw_stream(client, messages_body(stream=True, x_sim={"error_after": 3}))

    with pytest.raises(StreamEndedWithError) as caught:
        validate_stream(error_stream)
    assert caught.value.error == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert caught.value.message is not None and caught.value.message["id"] == "msg_sim_2"
    # The client can see the end a moment before the simulator marks the request.
    outcomes = ["dropped", "completed"]
    keyed_simulator.wait_for(lambda: [r.outcome for r in keyed_simulator.messages_requests] == outcomes)


def test_chat_side_tool_calls_and_reasoning(client: httpx.Client) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    body = {"model": "m", "messages": MESSAGES, "x_sim": {"tokens": 0, "thinking": "so", "tool_use": WEATHER}}
    answered = client.post("/chat/completions", json=body, headers=headers).json()
    with client.stream(
        "POST", "/chat/completions", json={**body, "stream": True}, headers=headers
    ) as response:
        chunks = [event.json() for event in parse_sse(response.read().decode())[0] if not event.is_done]

    validate_chat_completion(answered)
    message = answered["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == (None, "so")
    [call] = message["tool_calls"]
    assert (call["id"], call["function"]["name"]) == ("call_sim_1_0", "get_weather")
    assert json.loads(call["function"]["arguments"]) == WEATHER["input"]
    assert answered["choices"][0]["finish_reason"] == "tool_calls"
    for chunk in chunks:
        validate_chat_chunk(chunk)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks]
    assert deltas[1] == {"reasoning_content": "so"}
    assert deltas[2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[3:-1])
    assert json.loads(arguments) == WEATHER["input"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
