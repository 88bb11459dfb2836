"""The official `anthropic` SDK against the running gateway, whose target speaks only OpenAI chat (the
provider simulator on loopback): every request is translated Messages -> chat and every answer back.

What the simulator receives is checked too: a chat request, never a Messages one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.access.keys import hash_secret
from gateway.translate.prompt_tokens import count_prompt
from gateway.translate.token_estimate import estimate_input_tokens
from gateway.translate.tokenizer import load_cl100k
from tests.support.anthropic_shapes import StreamEndedWithError, validate_stream
from tests.support.harness import CLIENT_TIMEOUT, running_gateway, sim_routes_yaml, write_config
from tests.support.simulator import Behaviour, ProviderSimulator

TEAM_KEY = "sk-gw-messages-team"
KEYS = f"""\
keys:
  team: {{secret: {hash_secret(TEAM_KEY)}, models: [sim-model], limits: {{requests_per_minute: 3}}}}
"""


def routes_yaml(base_url: str, keys: str = "") -> str:
    more_routes = (
        "  other-model:\n    targets: [{provider: sim}]\n"
        "  chat-only:\n    apis: [chat]\n    targets: [{provider: sim}]\n"
    )
    return sim_routes_yaml(base_url, health_check=False) + more_routes + keys


@pytest.fixture
def gateway(simulator: ProviderSimulator, tmp_path: Path) -> Iterator[str]:
    with running_gateway(write_config(tmp_path, routes_yaml(simulator.base_url))) as gw:
        yield gw.base_url


@pytest.fixture
def client(gateway: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key="unused", max_retries=0, timeout=10.0)


HELLO = [{"role": "user", "content": "Hello"}]


def test_create_translates_both_ways(client: anthropic.Anthropic, simulator: ProviderSimulator) -> None:
    simulator.default = Behaviour(text="Hi there friend", stamp=False)
    message = client.messages.create(
        model="sim-model",
        max_tokens=64,
        system="Be brief.",
        messages=HELLO,
        stop_sequences=["END"],  # type: ignore[arg-type]
    )
    assert message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hi there friend"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0
    sent = simulator.chat_requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]
    assert (sent.json["max_tokens"], sent.json["stop"]) == (64, ["END"])


def test_stream_text_builds_the_final_message(
    client: anthropic.Anthropic, simulator: ProviderSimulator
) -> None:
    simulator.default = Behaviour(text="one two three four", stamp=False)
    with client.messages.stream(model="sim-model", max_tokens=64, messages=HELLO) as stream:  # type: ignore[arg-type]
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(texts) == "one two three four"
    assert final.content[0].text == "one two three four"  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    assert simulator.chat_requests[-1].json["stream"] is True


@pytest.mark.parametrize(
    "text",
    [
        "Summarise the design of the gateway in three points. " * 8,
        "请把这段说明翻译成英文并列出三个要点。" * 8,
    ],
)
def test_count_tokens_is_a_cl100k_estimate_for_a_chat_target(gateway: str, text: str) -> None:
    """A chat upstream has no count_tokens: the gateway counts with cl100k, as close for Chinese as for
    English (four characters a token say 41 for the Chinese text, cl100k 190: a coding agent would then
    overfill its context)."""
    body = {"model": "sim-model", "system": "Be brief.", "messages": [{"role": "user", "content": text}]}
    response = httpx.post(f"{gateway}/v1/messages/count_tokens", json=body, timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200
    assert response.headers["x-gateway-token-count"] == "estimate"
    assert response.json() == {"input_tokens": count_prompt(load_cl100k(), body)}
    assert response.json()["input_tokens"] > estimate_input_tokens(body)
    sdk = anthropic.Anthropic(base_url=gateway, api_key="unused", max_retries=0)
    assert sdk.messages.count_tokens(model="sim-model", messages=HELLO).input_tokens >= 1  # type: ignore[arg-type]


def test_typed_errors(client: anthropic.Anthropic, simulator: ProviderSimulator) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="no-such-model", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError, match="messages API"):
        client.messages.create(model="chat-only", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
    # The SDK itself insists on max_tokens; a raw client gets Anthropic's own 400 for it.
    raw = httpx.post(
        f"{str(client.base_url).rstrip('/')}/v1/messages",
        json={"model": "sim-model", "messages": HELLO},
        timeout=CLIENT_TIMEOUT,
    )
    assert raw.status_code == 400
    assert raw.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
    with pytest.raises(anthropic.BadRequestError, match="document"):
        client.messages.create(
            model="sim-model",
            max_tokens=8,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                        }
                    ],
                }
            ],
        )
    simulator.enqueue(Behaviour(status=500))
    with pytest.raises(anthropic.InternalServerError) as upstream:
        client.messages.create(model="sim-model", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
    assert isinstance(upstream.value, anthropic.APIStatusError)
    assert upstream.value.status_code == 500
    assert upstream.value.body["type"] == "error"  # type: ignore[index]
    simulator.enqueue(Behaviour(status=429, headers={"Retry-After": "7"}))
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="sim-model", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
    assert limited.value.response.headers["retry-after"] == "7"


def test_key_errors_are_anthropic_typed(simulator: ProviderSimulator, tmp_path: Path) -> None:
    config = write_config(tmp_path, routes_yaml(simulator.base_url, KEYS))
    with running_gateway(config) as gw:
        wrong = anthropic.Anthropic(base_url=gw.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError):
            wrong.messages.create(model="sim-model", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
        team = anthropic.Anthropic(base_url=gw.base_url, api_key=TEAM_KEY, max_retries=0)  # as x-api-key
        assert team.messages.create(model="sim-model", max_tokens=8, messages=HELLO).content  # type: ignore[arg-type]
        with pytest.raises(anthropic.PermissionDeniedError):
            team.messages.create(model="other-model", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]
        bearer = anthropic.Anthropic(base_url=gw.base_url, auth_token=TEAM_KEY, max_retries=0)
        assert bearer.messages.create(model="sim-model", max_tokens=8, messages=HELLO).content  # type: ignore[arg-type]
        with pytest.raises(anthropic.RateLimitError):
            for _ in range(3):
                team.messages.create(model="sim-model", max_tokens=8, messages=HELLO)  # type: ignore[arg-type]


WEATHER = {"name": "get_weather", "input": {"city": "Paris", "days": 2}}
TOOLS: Any = [
    {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}
]


def test_stream_tool_use_and_thinking_translated(
    client: anthropic.Anthropic, simulator: ProviderSimulator
) -> None:
    simulator.enqueue(Behaviour(tool_use=WEATHER, thinking="Check the weather.", stamp=False))
    with client.messages.stream(model="sim-model", max_tokens=256, messages=HELLO, tools=TOOLS) as stream:
        partials = [event.partial_json for event in stream if event.type == "input_json"]
        final = stream.get_final_message()
    assert len(partials) > 1  # the chat upstream's argument fragments, each an input_json_delta
    assert [block.type for block in final.content] == ["thinking", "text", "tool_use"]  # as the upstream
    assert final.content[0].thinking == "Check the weather."  # type: ignore[union-attr]
    tool = final.content[2]
    assert (tool.name, tool.input) == ("get_weather", WEATHER["input"])  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    sent = simulator.chat_requests[-1].json
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                          "parameters": {"type": "object", "properties": {}}}}
    ]  # fmt: skip


def test_translated_streams_hold_to_anthropic_shapes(gateway: str, simulator: ProviderSimulator) -> None:
    body = {"model": "sim-model", "max_tokens": 64, "stream": True, "messages": HELLO}
    for behaviour in (
        Behaviour(text="plain text answer", stamp=False),
        Behaviour(tool_use=[WEATHER, {"name": "get_time", "input": {}}], stamp=False),
        Behaviour(thinking="hmm", text="then text", stamp=False, split=7),
    ):
        simulator.enqueue(behaviour)
        with httpx.stream("POST", f"{gateway}/v1/messages", json=body, timeout=CLIENT_TIMEOUT) as response:
            raw = response.read()
        message = validate_stream(raw)
        assert message["stop_reason"] in ("end_turn", "tool_use")
    simulator.enqueue(Behaviour(tokens=8, drop_after=4, stamp=False))
    with httpx.stream("POST", f"{gateway}/v1/messages", json=body, timeout=CLIENT_TIMEOUT) as response:
        raw = response.read()
    with pytest.raises(StreamEndedWithError):
        validate_stream(raw)
    assert raw.count(b"event: error") == 1 and b"message_stop" not in raw


def test_usage_and_metrics_count_messages_requests(gateway: str, simulator: ProviderSimulator) -> None:
    body = {"model": "sim-model", "max_tokens": 64, "messages": HELLO}
    assert httpx.post(f"{gateway}/v1/messages", json=body, timeout=CLIENT_TIMEOUT).status_code == 200
    with httpx.stream(
        "POST", f"{gateway}/v1/messages", json={**body, "stream": True}, timeout=CLIENT_TIMEOUT
    ) as response:
        response.read()
    metrics = httpx.get(f"{gateway}/metrics", timeout=CLIENT_TIMEOUT).text
    families = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    labels = {"route": "sim-model", "provider": "sim", "status": "200", "api": "messages"}
    for stream in ("false", "true"):
        key = ("gateway_requests_total", tuple(sorted({**labels, "stream": stream}.items())))
        assert families[key] == 1
    tokens = [
        value
        for (name, found), value in families.items()
        if name == "gateway_tokens_total" and dict(found).get("route") == "sim-model"
    ]
    assert tokens and sum(tokens) > 0  # usage from the translated answers reached the accounting
