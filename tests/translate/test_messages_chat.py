"""Anthropic Messages in, OpenAI chat upstream out: request bodies and answers as golden transcripts,
refusals and upstream error bodies as tables.

Goldens live in `golden/messages_chat/`: `request_NAME.in.json` (the client's Messages request) ->
`request_NAME.out.json` (the chat request sent upstream), `response_NAME.in.json` (the chat completion) ->
`response_NAME.out.json` (the client's Message). Files are pretty JSON; the translator's bytes must equal
`orjson.dumps` of the parsed golden, which keeps the golden's key order, so order is checked too.
`GOLDEN_UPDATE=1 pytest ...` rewrites the expected files from the code (then read the diff).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

from gateway.config.models import ProviderConfig, RouteConfig, Target
from gateway.errors import InvalidRequest, UpstreamProtocolError
from gateway.translate.messages_chat import MessagesToChat

GOLDEN = Path(__file__).parent / "golden" / "messages_chat"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
ROUTE = RouteConfig(name="r", model="claude-*", targets=(Target(provider="up"),))
MODEL = "claude-sonnet-4-5"


def provider(*, stream_usage: bool = True) -> ProviderConfig:
    return ProviderConfig(name="up", type="openai", base_url="http://up.test/v1", stream_usage=stream_usage)


def translator(body: dict[str, Any], *, stream: bool = False, stream_usage: bool = True) -> MessagesToChat:
    return MessagesToChat(body, provider(stream_usage=stream_usage), stream=stream, route=ROUTE)


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
    assert orjson.loads(raw) == body  # the client's body is never mutated (each attempt starts from it)


def test_the_request_goldens_cover_each_feature() -> None:
    assert len(names("request")) >= 14
    assert len(names("response")) >= 7


@pytest.mark.parametrize(("stream", "stream_usage", "options"), [(True, True, True), (True, False, False)])
def test_a_stream_asks_for_the_usage_chunk_unless_the_provider_says_not_to(
    stream: bool, stream_usage: bool, options: bool
) -> None:
    body = {"model": MODEL, "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    sent = orjson.loads(translator(body, stream=stream, stream_usage=stream_usage).request_body(body, "m"))
    assert sent["stream"] is True
    assert ("stream_options" in sent) is options


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 4095}, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, "medium"),
        ({"type": "enabled", "budget_tokens": 16383}, "medium"),
        ({"type": "enabled", "budget_tokens": 16384}, "high"),
        ({"type": "enabled", "budget_tokens": 64000}, "high"),
        ({"type": "disabled"}, None),
    ],
)
def test_thinking_budget_becomes_a_reasoning_effort(thinking: dict[str, Any], effort: str | None) -> None:
    body = {"model": MODEL, "max_tokens": 5, "thinking": thinking, "messages": [user(TEXT)]}
    sent = orjson.loads(translator(body).request_body(body, "m"))
    assert sent.get("reasoning_effort") == effort


def user(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": list(blocks)}


TEXT = {"type": "text", "text": "hi"}
IMAGE = {"type": "image", "source": {"type": "url", "url": "u"}}
TOOL = {"name": "t", "input_schema": {"type": "object"}}
HISTORY = [
    user(TEXT),
    {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
]

REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("service_tier", {"service_tier": "auto"}, "service_tier"),
    ("container", {"container": "cntr_1"}, "container"),
    ("mcp_servers", {"mcp_servers": [{"type": "url", "url": "https://mcp", "name": "m"}]}, "mcp_servers"),
    ("context_management", {"context_management": {"edits": []}}, "context_management"),
    ("unknown top-level field", {"frobnicate": 1}, "frobnicate"),
    ("thinking adaptive", {"thinking": {"type": "adaptive"}}, "thinking.type"),
    ("thinking display", {"thinking": {"type": "enabled", "budget_tokens": 2048, "display": "omitted"}},
     "thinking.display"),
    ("metadata other key", {"metadata": {"user_id": "u", "session": "s"}}, "metadata.session"),
    ("system image block", {"system": [TEXT, {"type": "image", "source": {"type": "url", "url": "u"}}]},
     "system[1].type"),
    ("server tool web_search", {"tools": [TOOL, {"type": "web_search_20250305", "name": "web_search"}]},
     "tools[1].type"),
    ("server tool bash", {"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0].type"),
    ("server tool text editor", {"tools": [{"type": "text_editor_20250728", "name": "str_replace_editor"}]},
     "tools[0].type"),
    ("tool field defer_loading", {"tools": [{**TOOL, "defer_loading": True}]}, "tools[0].defer_loading"),
    ("document block", {"messages": [user(TEXT, {"type": "document", "source": {"type": "text"}})]},
     "messages[0].content[1].type"),
    ("search_result block", {"messages": [user({"type": "search_result", "source": "s", "title": "t"})]},
     "messages[0].content[0].type"),
    ("citations on text", {"messages": [user({**TEXT, "citations": [{"type": "char_location"}]})]},
     "messages[0].content[0].citations"),
    ("image file source", {"messages": [user({"type": "image", "source": {"type": "file", "file_id": "f"}})]},
     "messages[0].content[0].source.type"),
    ("redacted_thinking", {"messages": [user(TEXT), {"role": "assistant", "content": [
        {"type": "redacted_thinking", "data": "xx"}]}]}, "messages[1].content[0].type"),
    ("server_tool_use", {"messages": [user(TEXT), {"role": "assistant", "content": [
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}]}]},
     "messages[1].content[0].type"),
    ("web_search_tool_result", {"messages": [user(TEXT), {"role": "assistant", "content": [
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}]}]},
     "messages[1].content[0].type"),
    ("container_upload", {"messages": [user({"type": "container_upload", "file_id": "f"})]},
     "messages[0].content[0].type"),
    ("tool_use in a user turn", {"messages": [user({"type": "tool_use", "id": "i", "name": "t"})]},
     "messages[0].content[0].type"),
    ("image inside a tool_result", {"messages": [*HISTORY, user({"type": "tool_result",
        "tool_use_id": "toolu_1", "content": [TEXT, IMAGE]})]},
     "messages[2].content[0].content[1].type"),
    ("unknown block field", {"messages": [user({**TEXT, "extra": 1})]}, "messages[0].content[0].extra"),
    ("unknown message field", {"messages": [{"role": "user", "content": "x", "name": "bob"}]},
     "messages[0].name"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "param"), [(change, param) for _, change, param in REFUSALS], ids=[n for n, _, _ in REFUSALS]
)
def test_what_cannot_be_carried_over_is_refused_naming_the_field(change: dict[str, Any], param: str) -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": [user(TEXT)], **change}
    with pytest.raises(InvalidRequest) as caught:
        translator(body).request_body(body, "m")
    assert caught.value.status_code == 400
    assert caught.value.param == param
    assert caught.value.code == "unsupported_field"
    assert param in caught.value.message


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [user()]}, "messages[0].content"),
        ({"messages": [user({"type": "text"})]}, "messages[0].content[0].text"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
    ],
)
def test_malformed_requests_are_invalid(change: dict[str, Any], param: str) -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": [user(TEXT)], **change}
    with pytest.raises(InvalidRequest) as caught:
        translator(body).request_body(body, "m")
    assert (caught.value.status_code, caught.value.param) == (400, param)


@pytest.mark.parametrize("name", names("response"))
def test_response_goldens(name: str) -> None:
    content = (GOLDEN / f"{name}.in.json").read_bytes()
    got = translator({"model": MODEL, "max_tokens": 5, "messages": []}).response_body(content)
    check_golden(name, got)
    message = anthropic.types.Message.model_validate_json(got)  # what the SDK reads, it reads
    assert message.model == MODEL


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
        (
            b'{"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "t", '
            b'"arguments": "{"}}]}, "finish_reason": "tool_calls"}]}',
            "tool_calls[0].function.arguments is not JSON",
        ),
        (
            b'{"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "t", '
            b'"arguments": "[1]"}}]}, "finish_reason": "tool_calls"}]}',
            "tool_calls[0].function.arguments is not an object",
        ),
        (b'{"choices": [{"message": {"tool_calls": [{"id": "c"}]}}]}', "tool_calls[0] has no function name"),
    ],
)
def test_unreadable_answers_are_protocol_errors(content: bytes, words: str) -> None:
    with pytest.raises(UpstreamProtocolError) as caught:
        translator({"model": MODEL}).response_body(content)
    assert words in caught.value.message


@pytest.mark.parametrize(
    ("status", "content", "message", "anthropic_type"),
    [
        (
            401,
            b'{"error":{"message":"bad key","type":"invalid_request_error","param":null,'
            b'"code":"invalid_api_key"}}',
            "bad key",
            "authentication_error",
        ),
        (429, b'{"error":{"message":"slow down","type":"requests","code":"rate_limit"}}', "slow down",
         "rate_limit_error"),
        (404, b'{"error":"model \\"llama9\\" not found"}', 'model "llama9" not found', "not_found_error"),
        (500, b'{"error":"out of memory"}', "out of memory", "api_error"),
        (503, b"<html>busy</html>", "upstream returned HTTP 503 from provider 'up': <html>busy</html>",
         "api_error"),
        (422, b"", "upstream returned HTTP 422 from provider 'up'", "invalid_request_error"),
    ],
)  # fmt: skip
def test_upstream_errors_become_anthropic_error_bodies(
    status: int, content: bytes, message: str, anthropic_type: str
) -> None:
    error = translator({}).upstream_error(status, content, {"retry-after": "7", "x-other": "y"}, "up")
    assert (error.status_code, error.message, error.client_format) == (status, message, "anthropic")
    assert error.headers == {"retry-after": "7"}
    assert error.client_body == orjson.dumps(
        {"type": "error", "error": {"type": anthropic_type, "message": message}}
    )
    assert error.client_body is not None
    parsed = anthropic.types.ErrorResponse.model_validate_json(error.client_body)
    assert parsed.error.type == anthropic_type


def test_no_retry_after_no_header() -> None:
    error = translator({}).upstream_error(500, b'{"error":"x"}', {}, "up")
    assert error.headers == {}


def test_the_factory_signature() -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": [user(TEXT)]}
    made = MessagesToChat(body, provider(), stream=True, route=ROUTE)
    assert made.passthrough is False
    events = made.stream_events()
    assert events.usage is None and not events.ended
