"""OpenAI Responses in, OpenAI chat upstream out: request bodies and answers as golden transcripts,
refusals and upstream error bodies as tables.

Goldens live in `golden/responses_chat/`: `request_NAME.in.json` (the client's Responses request) ->
`request_NAME.out.json` (the chat request sent upstream), `response_NAME.in.json` (the chat completion) ->
`response_NAME.out.json` (the client's Response object). Files are pretty JSON; the translator's bytes
must equal `orjson.dumps` of the parsed golden, which keeps the golden's key order, so order is checked
too. Outputs are checked against OpenAI's published schemas: chat's `CreateChatCompletionRequest`, and
Responses' `Response` (also read by the openai SDK's `Response`). Inputs are not: that schema's `oneOf`s
rely on a discriminator, so a plain message is "valid under each of" two item schemas.
`GOLDEN_UPDATE=1 pytest ...` rewrites the expected files from the code (then read the diff).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.responses import Response

from gateway.config.models import ProviderConfig, RouteConfig, Target
from gateway.errors import InvalidRequest, UpstreamProtocolError
from gateway.translate.responses_chat import ResponsesToChat
from tests.support.openai_schemas import validate_chat_request
from tests.support.responses_schemas import validate_response

GOLDEN = Path(__file__).parent / "golden" / "responses_chat"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
ROUTE = RouteConfig(name="r", model="gpt-*", targets=(Target(provider="up"),))
MODEL = "gpt-5"
CREATED = 1_700_000_000


def provider(*, stream_usage: bool = True) -> ProviderConfig:
    return ProviderConfig(name="up", type="openai", base_url="http://up.test/v1", stream_usage=stream_usage)


def translator(body: dict[str, Any], *, stream: bool = False, stream_usage: bool = True) -> ResponsesToChat:
    return ResponsesToChat(
        body, provider(stream_usage=stream_usage), stream=stream, route=ROUTE, clock=lambda: CREATED + 0.5
    )


def names(prefix: str) -> list[str]:
    return sorted(path.name.removesuffix(".in.json") for path in GOLDEN.glob(f"{prefix}_*.in.json"))


def check_golden(name: str, got: bytes) -> None:
    path = GOLDEN / f"{name}.out.json"
    if UPDATE:
        path.write_text(orjson.dumps(orjson.loads(got), option=orjson.OPT_INDENT_2).decode() + "\n")
    assert got == orjson.dumps(orjson.loads(path.read_bytes()))


@pytest.mark.parametrize("name", names("request"))
def test_request_goldens(name: str) -> None:
    raw = (GOLDEN / f"{name}.in.json").read_bytes()
    body = orjson.loads(raw)
    got = translator(body, stream=bool(body.get("stream"))).request_body(body, "deepseek-chat")
    check_golden(name, got)
    validate_chat_request(orjson.loads(got))
    assert orjson.loads(raw) == body  # the client's body is never mutated (each attempt starts from it)


def test_the_goldens_cover_each_feature() -> None:
    assert len(names("request")) >= 15
    assert len(names("response")) >= 7


@pytest.mark.parametrize(("stream_usage", "options"), [(True, True), (False, False)])
def test_a_stream_asks_for_the_usage_chunk_unless_the_provider_says_not_to(
    stream_usage: bool, options: bool
) -> None:
    body = {"model": MODEL, "stream": True, "input": "x"}
    sent = orjson.loads(translator(body, stream=True, stream_usage=stream_usage).request_body(body, "m"))
    assert sent["stream"] is True
    assert ("stream_options" in sent) is options


@pytest.mark.parametrize("store", [False, None])
def test_store_false_or_absent_is_stateless_and_fine(store: bool | None) -> None:
    body: dict[str, Any] = {"model": MODEL, "input": "x"}
    if store is not None:
        body["store"] = store
    sent = orjson.loads(translator(body).request_body(body, "m"))
    assert "store" not in sent


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(parts)}


TEXT = {"type": "input_text", "text": "hi"}
TOOL = {"type": "function", "name": "t", "parameters": {"type": "object"}, "strict": False}
CALL = {"type": "function_call", "call_id": "c1", "name": "t", "arguments": "{}"}

STATELESS: list[tuple[str, dict[str, Any], str]] = [
    ("store true", {"store": True}, "store"),
    ("previous_response_id", {"previous_response_id": "resp_1"}, "previous_response_id"),
    ("conversation", {"conversation": "conv_1"}, "conversation"),
    ("conversation object", {"conversation": {"id": "conv_1"}}, "conversation"),
    ("prompt template", {"prompt": {"id": "pmpt_1"}}, "prompt"),
    ("item_reference", {"input": [user(TEXT), {"type": "item_reference", "id": "msg_1"}]}, "input[1].type"),
]
REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("background", {"background": True}, "background"),
    ("truncation auto", {"truncation": "auto"}, "truncation"),
    ("service_tier flex", {"service_tier": "flex"}, "service_tier"),
    ("unknown top-level field", {"frobnicate": 1}, "frobnicate"),
    ("top_logprobs", {"top_logprobs": 3}, "top_logprobs"),
    ("max_tool_calls", {"max_tool_calls": 2}, "max_tool_calls"),
    ("context_management", {"context_management": [{"type": "compaction"}]}, "context_management"),
    ("include other", {"include": ["reasoning.encrypted_content", "message.output_text.logprobs"]},
     "include[1]"),
    ("stream obfuscation", {"stream": True, "stream_options": {"include_obfuscation": True}},
     "stream_options.include_obfuscation"),
    ("instructions as items", {"instructions": [user(TEXT)]}, "instructions"),
    ("web_search", {"tools": [TOOL, {"type": "web_search"}]}, "tools[1].type"),
    ("file_search", {"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type"),
    ("computer_use", {"tools": [{"type": "computer_use_preview", "display_width": 1, "display_height": 1,
                                  "environment": "linux"}]}, "tools[0].type"),
    ("code_interpreter", {"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]},
     "tools[0].type"),
    ("image_generation", {"tools": [{"type": "image_generation"}]}, "tools[0].type"),
    ("mcp", {"tools": [{"type": "mcp", "server_label": "s", "server_url": "https://mcp.test"}]},
     "tools[0].type"),
    ("local_shell", {"tools": [{"type": "local_shell"}]}, "tools[0].type"),
    ("custom tool", {"tools": [{"type": "custom", "name": "c"}]}, "tools[0].type"),
    ("tool field defer_loading", {"tools": [{**TOOL, "defer_loading": True}]}, "tools[0].defer_loading"),
    ("tool_choice allowed_tools", {"tools": [TOOL], "tool_choice": {"type": "allowed_tools", "mode": "auto",
                                                                      "tools": []}}, "tool_choice.type"),
    ("tool_choice web_search", {"tool_choice": {"type": "web_search_preview"}}, "tool_choice.type"),
    ("input_image file_id", {"input": [user({"type": "input_image", "file_id": "file_1", "detail": "auto"})]},
     "input[0].content[0].file_id"),
    ("input_image detail original", {"input": [user({"type": "input_image", "image_url": "https://i.test/a",
                                                     "detail": "original"})]}, "input[0].content[0].detail"),
    ("input_file", {"input": [user(TEXT, {"type": "input_file", "file_id": "file_1"})]},
     "input[0].content[1].type"),
    ("input_audio", {"input": [user({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}})]},
     "input[0].content[0].type"),
    ("image in a system message", {"input": [{"role": "system", "content": [
        {"type": "input_image", "image_url": "https://i.test/a", "detail": "auto"}]}]},
     "input[0].content[0].type"),
    ("output_text annotations", {"input": [user(TEXT), {"role": "assistant", "content": [
        {"type": "output_text", "text": "x", "annotations": [{"type": "url_citation"}]}]}]},
     "input[1].content[0].annotations"),
    ("image in a function output", {"input": [user(TEXT), CALL, {"type": "function_call_output",
        "call_id": "c1", "output": [{"type": "input_image", "image_url": "https://i.test/a"}]}]},
     "input[2].output[0].type"),
    ("web_search_call item", {"input": [user(TEXT), {"type": "web_search_call", "id": "ws_1",
                                                      "status": "completed"}]}, "input[1].type"),
    ("computer_call_output item", {"input": [{"type": "computer_call_output", "call_id": "c"}]},
     "input[0].type"),
    ("reasoning then nothing", {"input": [user(TEXT), {"type": "reasoning", "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "hmm"}]}]}, "input[1]"),
    ("reasoning before a user turn", {"input": [{"type": "reasoning", "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "hmm"}]}, user(TEXT)]}, "input[0]"),
    ("unknown item field", {"input": [{**user(TEXT), "name": "bob"}]}, "input[0].name"),
    ("unknown part field", {"input": [user({**TEXT, "cache": 1})]}, "input[0].content[0].cache"),
    ("text format unknown field", {"text": {"format": {"type": "json_object", "strict": True}}},
     "text.format.strict"),
    ("reasoning effort unknown", {"reasoning": {"effort": "ultra"}}, "reasoning.effort"),
    ("reasoning generate_summary", {"reasoning": {"generate_summary": "auto"}}, "reasoning.generate_summary"),
]  # fmt: skip


def refused(change: dict[str, Any]) -> InvalidRequest:
    body = {"model": MODEL, "input": [user(TEXT)], **change}
    with pytest.raises(InvalidRequest) as caught:
        translator(body).request_body(body, "m")
    return caught.value


@pytest.mark.parametrize(
    ("change", "param"), [(change, param) for _, change, param in STATELESS], ids=[n for n, _, _ in STATELESS]
)
def test_what_needs_stored_state_is_refused_as_stateless(change: dict[str, Any], param: str) -> None:
    error = refused(change)
    assert (error.status_code, error.param, error.code) == (400, param, "unsupported_field")
    assert "stateless" in error.message
    assert error.message.startswith(param + ":")


@pytest.mark.parametrize(
    ("change", "param"), [(change, param) for _, change, param in REFUSALS], ids=[n for n, _, _ in REFUSALS]
)
def test_what_cannot_be_carried_over_is_refused_naming_the_field(change: dict[str, Any], param: str) -> None:
    error = refused(change)
    assert (error.status_code, error.param, error.code) == (400, param, "unsupported_field")
    assert error.message.startswith(param + ":")


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"input": []}, "input"),
        ({"input": 5}, "input"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [user()]}, "input[0].content"),
        ({"input": [user({"type": "input_text"})]}, "input[0].content[0].text"),
        (
            {"input": [user(TEXT), {"type": "function_call", "name": "t", "arguments": "{}"}]},
            "input[1].call_id",
        ),
        ({"input": [{"type": "function_call_output", "call_id": "c"}]}, "input[0].output"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"tools": {"type": "function"}}, "tools"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"include": "reasoning.encrypted_content"}, "include"),
    ],
)
def test_malformed_requests_are_invalid(change: dict[str, Any], param: str) -> None:
    error = refused(change)
    assert (error.status_code, error.param, error.code) == (400, param, "invalid_value")


@pytest.mark.parametrize("name", names("response"))
def test_response_goldens(name: str) -> None:
    content = (GOLDEN / f"{name}.in.json").read_bytes()
    body = {"model": MODEL, "input": "x", "tools": [TOOL], "temperature": 0.5}
    got = translator(body).response_body(content)
    check_golden(name, got)
    validate_response(orjson.loads(got))
    response = Response.model_validate_json(got)  # what the SDK reads, it reads
    assert (response.model, response.created_at) == (MODEL, CREATED)


def test_the_response_echoes_the_request() -> None:
    body = {
        "model": MODEL,
        "input": "x",
        "instructions": "Be brief.",
        "max_output_tokens": 99,
        "parallel_tool_calls": False,
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_object"}, "verbosity": "low"},
        "tool_choice": {"type": "function", "name": "t"},
        "tools": [TOOL],
        "top_p": 0.5,
        "user": "u",
        "metadata": {"k": "v"},
    }
    content = (GOLDEN / "response_text.in.json").read_bytes()
    got = orjson.loads(translator(body).response_body(content))
    validate_response(got)
    assert got["instructions"] == "Be brief."
    assert (got["max_output_tokens"], got["parallel_tool_calls"], got["top_p"]) == (99, False, 0.5)
    assert got["reasoning"] == {"effort": "low", "summary": None}
    assert got["text"] == {"format": {"type": "json_object"}, "verbosity": "low"}
    assert got["tool_choice"] == {"type": "function", "name": "t"}
    assert got["tools"] == [{"type": "function", "name": "t", "description": None,
                             "parameters": {"type": "object"}, "strict": False}]  # fmt: skip
    assert (got["user"], got["metadata"]) == ("u", {"k": "v"})


def test_response_usage_is_the_chat_usage_as_given() -> None:
    content = (GOLDEN / "response_cached_usage.in.json").read_bytes()
    assert translator({}).response_usage(orjson.loads(content)) == orjson.loads(content)["usage"]
    assert translator({}).response_usage(orjson.loads(b'{"choices": []}')) is None
    assert translator({}).response_usage(None) is None


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"<html>", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"choices": []}', "no choices[0].message"),
        (b'{"choices": [{"message": {"tool_calls": {"a": 1}}}]}', "tool_calls is not a list"),
        (b'{"choices": [{"message": {"tool_calls": [{"id": "c"}]}}]}', "tool_calls[0] has no function name"),
    ],
)
def test_unreadable_answers_are_protocol_errors(content: bytes, words: str) -> None:
    with pytest.raises(UpstreamProtocolError) as caught:
        translator({"model": MODEL}).response_body(content)
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("status", "content", "message", "error_type"),
    [
        (401, b'{"error":{"message":"bad key","type":"invalid_request_error","param":null,'
              b'"code":"invalid_api_key"}}', "bad key", "invalid_request_error"),
        (429, b'{"error":{"message":"slow down","type":"requests","code":"rate_limit"}}', "slow down",
         "requests"),
        (500, b'{"error":"out of memory"}', "out of memory", "server_error"),
    ],
)  # fmt: skip
def test_upstream_errors_keep_openais_shape(
    status: int, content: bytes, message: str, error_type: str
) -> None:
    error = translator({}).upstream_error(status, content, {"retry-after": "7", "x-other": "y"}, "up")
    assert (error.status_code, error.message, error.error_type) == (status, message, error_type)
    assert error.headers == {"retry-after": "7"}


def test_the_factory_signature() -> None:
    body = {"model": MODEL, "input": "x"}
    made = ResponsesToChat(body, provider(), stream=True, route=ROUTE)
    assert made.passthrough is False
    events = made.stream_events()
    assert events.usage is None and not events.ended
