"""OpenAI chat -> Anthropic Messages: request bodies as golden transcripts, one per feature, and every
refusal (400, `unsupported_field`, the field named in `param`) as a table."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from pydantic import TypeAdapter

from gateway.errors import InvalidRequest
from tests.translate.chat_golden_support import GOLDEN, expected_json, read_json, translator

REQUESTS = sorted(path.name.removesuffix(".in.json") for path in GOLDEN.glob("request_*.in.json"))


@pytest.mark.parametrize("name", REQUESTS)
def test_request_goldens(name: str) -> None:
    body = read_json(f"{name}.in.json")
    original = copy.deepcopy(body)
    sent = translator(body, stream=bool(body.get("stream"))).request_body(body, "claude-sonnet-4-5")
    assert sent == expected_json(f"{name}.out.json", sent)
    assert body == original  # each attempt starts again from the client's body


def test_request_goldens_fit_the_anthropic_sdk_types() -> None:
    # A shape check (required keys, value types, literals); pydantic lets TypedDicts carry extra keys.
    adapter = TypeAdapter(MessageCreateParamsNonStreaming)
    for name in REQUESTS:
        sent = read_json(f"{name}.out.json")
        sent.pop("stream", None)
        adapter.validate_python(sent)


def test_every_feature_has_a_golden() -> None:
    assert len(REQUESTS) >= 20
    for name in REQUESTS:
        assert (GOLDEN / f"{name}.out.json").exists(), name


USER = [{"role": "user", "content": "Hi"}]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "claude", "messages": USER, **fields}


def turns(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"model": "claude", "messages": list(messages)}


def image(url: str, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url, **extra}}]}


CALL = {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
SIGNED = {"type": "thinking", "thinking": "hm", "signature": "sig"}

REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    # Placement and roles
    ("late system", turns(USER[0], {"role": "system", "content": "x"}), "messages[1]"),
    (
        "late developer",
        turns(USER[0], {"role": "assistant", "content": "a"}, {"role": "developer", "content": "x"}),
        "messages[2]",
    ),
    ("function role", turns({"role": "function", "name": "f", "content": "x"}), "messages[0].role"),
    ("name on user", turns({"role": "user", "content": "x", "name": "bob"}), "messages[0].name"),
    ("name on system", turns({"role": "system", "content": "x", "name": "s"}, USER[0]), "messages[0].name"),
    (
        "unknown message key",
        turns({"role": "user", "content": "x", "cache_control": {}}),
        "messages[0].cache_control",
    ),
    # User parts
    (
        "input_audio",
        turns(
            {
                "role": "user",
                "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}],
            }
        ),
        "messages[0].content[0].type",
    ),
    (
        "file",
        turns(
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "file", "file": {"file_id": "f"}}],
            }
        ),
        "messages[0].content[1].type",
    ),
    (
        "image detail high",
        turns(image("https://x.test/a.png", detail="high")),
        "messages[0].content[0].image_url.detail",
    ),
    (
        "image detail low",
        turns(image("https://x.test/a.png", detail="low")),
        "messages[0].content[0].image_url.detail",
    ),
    ("image ftp", turns(image("ftp://x.test/a.png")), "messages[0].content[0].image_url.url"),
    ("image not base64", turns(image("data:image/png,abc")), "messages[0].content[0].image_url.url"),
    ("image svg", turns(image("data:image/svg+xml;base64,PHN2Zz4=")), "messages[0].content[0].image_url.url"),
    (
        "system image part",
        turns(
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}, USER[0]
        ),
        "messages[0].content[0].type",
    ),
    (
        "text part extra key",
        turns(
            {
                "role": "user",
                "content": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}}],
            }
        ),
        "messages[0].content[0].cache_control",
    ),
    # Assistant messages
    (
        "refusal",
        turns(USER[0], {"role": "assistant", "content": None, "refusal": "no"}),
        "messages[1].refusal",
    ),
    (
        "refusal part",
        turns(USER[0], {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]}),
        "messages[1].content[0].type",
    ),
    ("audio", turns(USER[0], {"role": "assistant", "audio": {"id": "a1"}}), "messages[1].audio"),
    (
        "legacy function_call",
        turns(USER[0], {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}),
        "messages[1].function_call",
    ),
    (
        "name on assistant",
        turns(USER[0], {"role": "assistant", "content": "a", "name": "bot"}),
        "messages[1].name",
    ),
    (
        "unparsable arguments",
        turns(
            USER[0],
            {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{oops"}}]},
        ),
        "messages[1].tool_calls[0].function.arguments",
    ),
    (
        "array arguments",
        turns(
            USER[0],
            {"role": "assistant", "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "[1]"}}]},
        ),
        "messages[1].tool_calls[0].function.arguments",
    ),
    (
        "custom tool call",
        turns(USER[0], {"role": "assistant", "tool_calls": [{"id": "t", "type": "custom", "custom": {}}]}),
        "messages[1].tool_calls[0].type",
    ),
    (
        "unsigned reasoning",
        turns(USER[0], {"role": "assistant", "content": "a", "reasoning_content": "hm"}),
        "messages[1].reasoning_content",
    ),
    (
        "thinking block without signature",
        turns(
            USER[0],
            {
                "role": "assistant",
                "content": "a",
                "thinking_blocks": [{"type": "thinking", "thinking": "hm"}],
            },
        ),
        "messages[1].thinking_blocks[0].signature",
    ),
    (
        "reasoning differing from blocks",
        turns(
            USER[0],
            {"role": "assistant", "content": "a", "reasoning_content": "other", "thinking_blocks": [SIGNED]},
        ),
        "messages[1].reasoning_content",
    ),
    (
        "unknown thinking block",
        turns(USER[0], {"role": "assistant", "content": "a", "thinking_blocks": [{"type": "summary"}]}),
        "messages[1].thinking_blocks[0].type",
    ),
    (
        "thinking block cache_control",
        turns(
            USER[0],
            {"role": "assistant", "content": "a", "thinking_blocks": [{**SIGNED, "cache_control": {}}]},
        ),
        "messages[1].thinking_blocks[0].cache_control",
    ),
    # Tool messages
    (
        "tool image part",
        turns(
            USER[0],
            {"role": "assistant", "tool_calls": [CALL]},
            {
                "role": "tool",
                "tool_call_id": "t1",
                "content": [{"type": "image_url", "image_url": {"url": "https://x"}}],
            },
        ),
        "messages[2].content[0].type",
    ),
    # Tools
    (
        "strict tool",
        chat(tools=[{"type": "function", "function": {"name": "f", "strict": True}}]),
        "tools[0].function.strict",
    ),
    ("custom tool", chat(tools=[{"type": "custom", "custom": {"name": "c"}}]), "tools[0].type"),
    ("web search tool", chat(tools=[TOOL, {"type": "web_search"}]), "tools[1].type"),
    (
        "allowed_tools choice",
        chat(tools=[TOOL], tool_choice={"type": "allowed_tools", "allowed_tools": {}}),
        "tool_choice",
    ),
    ("unknown tool_choice", chat(tools=[TOOL], tool_choice="any"), "tool_choice"),
    # Sampling and output
    ("temperature above 1", chat(temperature=1.5), "temperature"),
    ("n 2", chat(n=2), "n"),
    ("logprobs", chat(logprobs=True), "logprobs"),
    ("top_logprobs", chat(top_logprobs=2), "top_logprobs"),
    ("logit_bias", chat(logit_bias={"50256": -100}), "logit_bias"),
    ("presence_penalty", chat(presence_penalty=0.5), "presence_penalty"),
    ("frequency_penalty", chat(frequency_penalty=-1), "frequency_penalty"),
    ("seed", chat(seed=7), "seed"),
    ("json_object", chat(response_format={"type": "json_object"}), "response_format"),
    (
        "json_schema",
        chat(response_format={"type": "json_schema", "json_schema": {"name": "x"}}),
        "response_format",
    ),
    ("audio output", chat(audio={"voice": "alloy", "format": "wav"}), "audio"),
    ("modalities audio", chat(modalities=["text", "audio"]), "modalities"),
    ("prediction", chat(prediction={"type": "content", "content": "x"}), "prediction"),
    ("web_search_options", chat(web_search_options={}), "web_search_options"),
    ("functions", chat(functions=[{"name": "f"}]), "functions"),
    ("function_call", chat(function_call="auto"), "function_call"),
    ("metadata", chat(metadata={"k": "v"}), "metadata"),
    ("store", chat(store=True), "store"),
    ("service_tier", chat(service_tier="flex"), "service_tier"),
    ("prompt_cache_key", chat(prompt_cache_key="k"), "prompt_cache_key"),
    ("verbosity", chat(verbosity="low"), "verbosity"),
    ("unknown field", chat(thinking={"type": "enabled", "budget_tokens": 2000}), "thinking"),
    ("different user ids", chat(user="a", safety_identifier="b"), "safety_identifier"),
    ("max_tokens differing", chat(max_tokens=10, max_completion_tokens=20), "max_tokens"),
    (
        "stream_options obfuscation",
        chat(stream=True, stream_options={"include_obfuscation": True}),
        "stream_options.include_obfuscation",
    ),
    # reasoning_effort
    (
        "reasoning_effort over explicit max",
        chat(reasoning_effort="medium", max_completion_tokens=8192),
        "max_completion_tokens",
    ),
    ("reasoning_effort over legacy max", chat(reasoning_effort="low", max_tokens=2000), "max_tokens"),
    ("reasoning_effort over route default", chat(reasoning_effort="low"), "max_tokens"),
    ("reasoning_effort unknown", chat(reasoning_effort="xhigh", max_tokens=100000), "reasoning_effort"),
]


@pytest.mark.parametrize(("case", "body", "param"), REFUSALS, ids=[case for case, _, _ in REFUSALS])
def test_refusals(case: str, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        translator(body).request_body(body, "claude-sonnet-4-5")
    error = caught.value
    assert error.status_code == 400
    assert error.param == param
    assert error.code == "unsupported_field"
    answer = orjson.loads(error.body())["error"]
    assert answer["type"] == "invalid_request_error"
    assert answer["param"] == param
    assert error.message.startswith(f"{param}: "), error.message
    assert error.message.endswith("cannot be sent to an Anthropic Messages upstream")


MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("no messages", {"model": "claude", "messages": []}, "messages"),
    ("max_tokens zero", chat(max_tokens=0), "max_tokens"),
    ("stop number", chat(stop=3), "stop"),
    (
        "tool call without id",
        turns(
            USER[0],
            {
                "role": "assistant",
                "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
        ),
        "messages[1].tool_calls[0]",
    ),
    ("tool message without id", turns({"role": "tool", "content": "x"}), "messages[0].tool_call_id"),
    ("bad base64", turns(image("data:image/png;base64,!!!")), "messages[0].content[0].image_url.url"),
]


@pytest.mark.parametrize(("case", "body", "param"), MALFORMED, ids=[case for case, _, _ in MALFORMED])
def test_malformed_requests_are_400s(case: str, body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        translator(body).request_body(body, "claude-sonnet-4-5")
    assert (caught.value.status_code, caught.value.param, caught.value.code) == (400, param, "invalid_value")
