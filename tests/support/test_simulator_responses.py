"""The simulator's OpenAI Responses mode, driven by the official `openai` SDK and by httpx over loopback,
its answers and events held to OpenAI's published Responses schemas (tests.support.responses_schemas)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import jsonschema
import openai
import pytest

from tests.support.harness import CLIENT_TIMEOUT
from tests.support.openai_schemas import validate_error
from tests.support.responses_schemas import validate_response, validate_stream_event
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.sse_reader import parse_sse

pytestmark = pytest.mark.timeout(30)

KEY = "sk-sim-responses"
WEATHER = {"name": "get_weather", "input": {"city": "Paris", "days": 3}}
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}


def body(stream: bool = False, **extra: object) -> dict:
    return {"model": "sim-model", "input": "say three words", "stream": stream, **extra}


@pytest.fixture
def keyed_simulator() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(api_key=KEY) as simulator:
        yield simulator


@pytest.fixture
def sdk(keyed_simulator: ProviderSimulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=keyed_simulator.base_url, api_key=KEY, max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def client(keyed_simulator: ProviderSimulator) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=keyed_simulator.base_url, headers=headers, timeout=CLIENT_TIMEOUT) as client:
        yield client


def stream_payloads(client: httpx.Client, request: dict) -> list[dict]:
    """The stream's events (each checked: its SSE name is its `type`), as parsed JSON."""
    with client.stream("POST", "/responses", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    events = parse_sse(text)[0]
    payloads = [event.json() for event in events]
    assert [event.event for event in events] == [payload["type"] for payload in payloads]
    return payloads


# The SDK against the simulator.


def test_create_answers_a_response_and_records_the_body_as_sent(
    keyed_simulator: ProviderSimulator, sdk: openai.OpenAI
) -> None:
    answer = sdk.responses.create(
        model="sim-model",
        input="say three words",
        instructions="be brief",
        extra_headers={"OpenAI-Beta": "responses=v1"},
    )

    assert (answer.id, answer.status, answer.model) == ("resp_sim_1", "completed", "sim-model")
    assert answer.output_text == "word0 word1 word2 word3 word4 "
    assert answer.instructions == "be brief"
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.total_tokens) == (5, 5, 10)
    [recorded] = keyed_simulator.responses_requests
    assert (recorded.method, recorded.path) == ("POST", "/v1/responses")
    assert recorded.headers["openai-beta"] == "responses=v1"
    assert (
        json.loads(recorded.body)
        == recorded.json
        == {
            "input": "say three words",
            "instructions": "be brief",
            "model": "sim-model",
        }
    )
    assert keyed_simulator.chat_requests == [] and keyed_simulator.messages_requests == []


def test_stream_helper_accumulates_the_final_response(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="sim-model", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()

    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 5,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert final.output_text == "word0 word1 word2 word3 word4 "
    assert final.usage is not None and final.usage.output_tokens == 5


def test_stream_with_reasoning_and_function_calls(
    keyed_simulator: ProviderSimulator, sdk: openai.OpenAI
) -> None:
    keyed_simulator.enqueue(Behaviour(tokens=1, thinking="let me see", tool_use=[WEATHER, {"name": "now"}]))
    with sdk.responses.stream(model="sim-model", input="weather?", tools=[TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()

    assert [item.type for item in final.output] == ["reasoning", "message", "function_call", "function_call"]
    reasoning, message, weather, now = final.output
    assert reasoning.type == "reasoning" and reasoning.summary[0].text == "let me see"
    assert message.type == "message" and final.output_text == "word0 "
    assert weather.type == "function_call" and now.type == "function_call"
    assert (weather.call_id, weather.name, json.loads(weather.arguments)) == (
        "call_sim_1_0",
        "get_weather",
        WEATHER["input"],
    )
    assert (now.call_id, now.arguments) == ("call_sim_1_1", "{}")
    fragments = [
        e.delta for e in events if e.type == "response.function_call_arguments.delta" and e.output_index == 2
    ]
    assert len(fragments) == 3 and json.loads("".join(fragments)) == WEATHER["input"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.usage is not None
    assert final.usage.output_tokens_details.reasoning_tokens == 3


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (503, openai.InternalServerError),
    ],
)
def test_scripted_statuses_raise_the_sdks_typed_errors(
    keyed_simulator: ProviderSimulator,
    sdk: openai.OpenAI,
    status: int,
    error_class: type[openai.APIStatusError],
) -> None:
    keyed_simulator.enqueue(Behaviour(status=status, headers={"retry-after": "7"}))
    with pytest.raises(error_class) as caught:
        sdk.responses.create(model="sim-model", input="hi")

    assert caught.value.status_code == status
    validate_error({"error": caught.value.body})
    assert caught.value.response.headers["retry-after"] == "7"


def test_error_after_writes_response_failed(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(
        model="sim-model",
        input="hi",
        extra_body={"x_sim": {"error_after": 5, "error_type": "rate_limit_exceeded"}},
    ) as stream:
        events = list(stream)

    assert [e.type for e in events][-2:] == ["response.output_text.delta", "response.failed"]
    failed = events[-1]
    assert failed.type == "response.failed" and failed.sequence_number == 5
    assert failed.response.status == "failed" and failed.response.error is not None
    assert failed.response.error.code == "rate_limit_exceeded"
    with pytest.raises(RuntimeError, match=r"response\.completed"):
        stream.get_final_response()


# Auth, paths and faults.


def test_key_is_a_bearer_token_and_errors_have_openais_shape(keyed_simulator: ProviderSimulator) -> None:
    with httpx.Client(base_url=keyed_simulator.base_url, timeout=CLIENT_TIMEOUT) as plain:
        anthropic_style = plain.post("/responses", json=body(), headers={"x-api-key": KEY})
        bad_json = plain.post("/responses", content=b"{nope", headers={"authorization": f"Bearer {KEY}"})
        wrong_method = plain.get("/responses")
        bad_x_sim = plain.post(
            "/responses", json=body(x_sim={"nope": 1}), headers={"authorization": f"Bearer {KEY}"}
        )

    for response, status in ((anthropic_style, 401), (bad_json, 400), (wrong_method, 405), (bad_x_sim, 400)):
        assert response.status_code == status
        validate_error(response.json())
        assert "type" not in response.json()  # not Anthropic's shape
    assert anthropic_style.json()["error"]["code"] == "invalid_api_key"


def test_faults_apply_to_responses_streams(keyed_simulator: ProviderSimulator, client: httpx.Client) -> None:
    keyed_simulator.enqueue(Behaviour(drop_after=3), Behaviour(head_delay=0.05, token_delay=0.01))
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/responses", json=body(True)) as cut,
    ):
        cut.read()
    delayed = stream_payloads(client, body(True, x_sim={"tokens": 2}))

    assert delayed[-1]["type"] == "response.completed"
    _, second = keyed_simulator.responses_requests
    assert second.sent_at[0] - second.received_at >= 0.05
    assert len(second.sent_at) == len(delayed)
    keyed_simulator.wait_for(
        lambda: [r.outcome for r in keyed_simulator.responses_requests] == ["dropped", "completed"]
    )


def test_one_queue_scripts_chat_and_responses_in_arrival_order(
    keyed_simulator: ProviderSimulator, client: httpx.Client
) -> None:
    keyed_simulator.enqueue(Behaviour(status=429), Behaviour(status=503))
    first = client.post("/responses", json=body())
    second = client.post(
        "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]}
    )

    assert (first.status_code, second.status_code) == (429, 503)
    assert first.json()["error"]["code"] == "rate_limit_exceeded"


# The simulator's output against OpenAI's schemas.


@pytest.mark.parametrize(
    "x_sim",
    [
        {},
        {"tokens": 0},
        {"thinking": "step one then two", "tool_use": [WEATHER, {"name": "now"}]},
        {"finish_reason": "length"},
        {"split": 1, "crlf": True, "ping_every": 2, "multiline_data": True},
        {"coalesce": 4, "chunked": False},
    ],
)
def test_answers_and_streams_pass_the_schemas_and_agree(client: httpx.Client, x_sim: dict) -> None:
    request = body(tools=[TOOL], metadata={"k": "v"}, x_sim=x_sim)
    answered = client.post("/responses", json=request).json()
    streamed = stream_payloads(client, {**request, "stream": True})

    validate_response(answered)
    for event in streamed:
        validate_stream_event(event)
    assert [event["sequence_number"] for event in streamed] == list(range(len(streamed)))
    final = streamed[-1]["response"]
    expected_end = "response.incomplete" if x_sim.get("finish_reason") == "length" else "response.completed"
    assert streamed[-1]["type"] == expected_end
    done_items = [e["item"] for e in streamed if e["type"] == "response.output_item.done"]
    assert final["output"] == done_items

    def without_ids(response: dict) -> str:
        """The response as JSON, its request number (in every id) and clock reading taken out."""
        return re.sub(r"sim_\d+", "sim_N", json.dumps({**response, "created_at": 0}))

    assert without_ids(final) == without_ids(answered)


def test_response_failed_passes_the_schema(client: httpx.Client) -> None:
    events = stream_payloads(client, body(True, x_sim={"error_after": 2, "error_message": "boom"}))

    assert [event["type"] for event in events] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    for event in events:
        validate_stream_event(event)
    assert events[-1]["response"]["error"] == {"code": "server_error", "message": "boom"}


def test_the_schema_check_can_fail() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_stream_event({"type": "response.output_text.delta", "delta": "x", "sequence_number": 0})
