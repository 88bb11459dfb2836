"""Anthropic Message -> chat.completion: golden answers (checked against OpenAI's schema), usage, and the
upstream's error bodies in OpenAI's shape."""

from __future__ import annotations

import orjson
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion

from gateway.errors import UpstreamProtocolError
from gateway.translate.chat_messages import ChatToMessages
from tests.support.openai_schemas import validate_chat_completion
from tests.translate.chat_golden_support import (
    CREATED,
    GOLDEN,
    PROVIDER,
    ROUTE,
    expected_json,
    translator,
)

RESPONSES = sorted(path.name.removesuffix(".in.json") for path in GOLDEN.glob("response_*.in.json"))


@pytest.mark.parametrize("name", RESPONSES)
def test_response_goldens(name: str) -> None:
    content = (GOLDEN / f"{name}.in.json").read_bytes()
    Message.model_validate_json(content)  # the input is a Message as the anthropic SDK knows it
    answer = translator({}).response_body(content)
    assert answer == expected_json(f"{name}.out.json", answer)
    parsed = orjson.loads(answer)
    validate_chat_completion(parsed)
    ChatCompletion.model_validate(parsed)  # and the openai SDK reads it
    assert parsed["id"] == "chatcmpl-msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert parsed["created"] == CREATED


def test_the_thinking_answer_round_trips_into_a_request() -> None:
    answer = orjson.loads(
        translator({}).response_body((GOLDEN / "response_thinking_tool.in.json").read_bytes())
    )
    message = answer["choices"][0]["message"]
    assert message["reasoning_content"] == "The user wants the weather."
    calls = [
        (call["function"]["name"], orjson.loads(call["function"]["arguments"]))
        for call in message["tool_calls"]
    ]
    assert calls == [("get_weather", {"location": "San Francisco, CA", "unit": "celsius"}), ("now", {})]
    # The client sends the assistant message back as it got it: Anthropic gets its signed blocks again.
    message = {key: value for key, value in message.items() if value is not None}
    body = {"model": "claude", "messages": [{"role": "user", "content": "Weather?"}, message]}
    sent = orjson.loads(translator(body).request_body(body, "claude-sonnet-4-5"))
    original = orjson.loads((GOLDEN / "response_thinking_tool.in.json").read_bytes())
    assert sent["messages"][1] == {"role": "assistant", "content": original["content"]}


def test_usage() -> None:
    content = (GOLDEN / "response_max_tokens.in.json").read_bytes()
    assert translator({}).response_usage(orjson.loads(content)) == {
        "prompt_tokens": 3210,
        "completion_tokens": 5,
        "total_tokens": 3215,
        "prompt_tokens_details": {"cached_tokens": 3000},
    }
    assert translator({}).response_usage(None) is None
    assert translator({}).response_usage(orjson.loads(b'{"usage": null}')) is None


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (
            b'{"content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]}',
            "server_tool_use",
        ),
        (
            b'{"content":[{"type":"web_search_tool_result","tool_use_id":"s","content":[]}]}',
            "web_search_tool_result",
        ),
        (b'{"content":[{"type":"text","text":"x","citations":[{"type":"char_location"}]}]}', "citations"),
        (b'{"content":[],"stop_reason":"pause_turn"}', "pause_turn"),
        (b'{"content":[],"stop_reason":null}', "None"),
        (b"not json", "not JSON"),
        (b'{"type":"message"}', "content list"),
    ],
)
def test_answers_chat_cannot_show_are_protocol_errors(content: bytes, named: str) -> None:
    with pytest.raises(UpstreamProtocolError, match=named):
        translator({}).response_body(content)


def test_upstream_errors_become_openai_errors() -> None:
    content = b'{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}'
    error = translator({}).upstream_error(429, content, {"retry-after": "7", "x-other": "y"}, "anthropic")
    assert (error.status_code, error.headers) == (429, {"retry-after": "7"})
    assert orjson.loads(error.body()) == {
        "error": {
            "message": "Slow down",
            "type": "invalid_request_error",
            "param": None,
            "code": "rate_limit_error",
        }
    }


def test_created_comes_from_the_clock_once() -> None:
    ticks = iter([1.9, 5.0])
    pair = ChatToMessages({}, PROVIDER, stream=False, route=ROUTE, clock=lambda: next(ticks))
    content = (GOLDEN / "response_text.in.json").read_bytes()
    assert orjson.loads(pair.response_body(content))["created"] == 1
    assert orjson.loads(pair.response_body(content))["created"] == 1
