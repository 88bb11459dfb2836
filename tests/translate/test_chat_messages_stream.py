"""Anthropic Messages streams -> chat.completion.chunk frames: golden transcripts fed whole, split at every
byte boundary and one byte per read; the chunks checked against OpenAI's schema and accumulated by the
openai SDK as a chat client would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import orjson
import pytest
from anthropic.types import RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from pydantic import TypeAdapter

from gateway.errors import UpstreamProtocolError, UpstreamStatusError
from gateway.streaming.sse import EventParser
from gateway.streaming.stats import StreamStats
from gateway.translate.chat_messages_stream import MessagesStreamToChat
from tests.support.openai_schemas import validate_chat_chunk
from tests.translate.chat_golden_support import (
    CREATED,
    GOLDEN,
    expected_bytes,
    relay,
    splits,
    sse_events,
    translator,
)

# (upstream file, client golden, the client asked for stream_options.include_usage)
STREAMS = [
    ("stream_text", "stream_text", False),
    ("stream_thinking", "stream_thinking", False),
    ("stream_tool", "stream_tool", False),
    ("stream_two_tools", "stream_two_tools", True),
    ("stream_max_tokens", "stream_max_tokens", False),
    ("stream_stop_sequence", "stream_stop_sequence", False),
    ("stream_usage", "stream_usage_included", True),
    ("stream_usage", "stream_usage_omitted", False),
    ("stream_error", "stream_error", False),
    ("stream_cut_off", "stream_cut_off", False),
]


def events(include_usage: bool) -> MessagesStreamToChat:
    body: dict[str, Any] = {"model": "claude", "messages": [], "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return translator(body, stream=True).stream_events()


def upstream(name: str) -> bytes:
    return (GOLDEN / f"{name}.upstream.sse").read_bytes()


@pytest.mark.parametrize(("source", "name", "include_usage"), STREAMS, ids=[name for _, name, _ in STREAMS])
def test_stream_goldens_at_every_split(source: str, name: str, include_usage: bool) -> None:
    data = upstream(source)
    whole = relay(events(include_usage), [data])
    expected = expected_bytes(f"{name}.client.sse", whole)
    for how, reads in splits(data):
        assert relay(events(include_usage), reads) == expected, how


def test_upstream_goldens_are_anthropic_events() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    for source in {source for source, _, _ in STREAMS}:
        for name, data in EventParser().feed(upstream(source)):
            if name not in ("ping", "error"):  # not in the SDK's union
                adapter.validate_json(data)


def accumulate(client: bytes) -> Any:
    state = ChatCompletionStreamState()
    for payload in sse_events(client):
        validate_chat_chunk(payload)
        state.handle_chunk(ChatCompletionChunk.model_validate(payload))
    return state.get_final_completion()


def client_stream(name: str) -> bytes:
    return (GOLDEN / f"{name}.client.sse").read_bytes()


def test_every_chunk_is_a_valid_chat_chunk() -> None:
    for _, name, include_usage in STREAMS:
        client = client_stream(name)
        for payload in sse_events(client):
            if "error" in payload:
                continue
            validate_chat_chunk(payload)
            assert payload["id"] == "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL"
            assert payload["created"] == CREATED
            assert payload["model"] == "claude-sonnet-4-5-20250929"
            assert ("usage" in payload) is include_usage
        if name not in ("stream_error", "stream_cut_off"):
            assert client.endswith(b"\n\ndata: [DONE]\n\n")


def test_the_sdk_accumulates_text() -> None:
    choice = accumulate(client_stream("stream_text")).choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Hello! How can I help?", "stop")
    assert choice.message.tool_calls is None


def test_the_sdk_accumulates_thinking_with_its_signature() -> None:
    choice = accumulate(client_stream("stream_thinking")).choices[0]
    assert choice.message.content == "It is 4."
    extra = choice.message.model_extra or {}
    assert extra["reasoning_content"] == "Let me think about 2+2."
    assert extra["thinking_blocks"] == [
        {
            "index": 0,
            "type": "thinking",
            "thinking": "Let me think about 2+2.",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        },
        {"index": 1, "type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
    ]


def test_the_sdk_accumulates_one_tool_call_from_fragments() -> None:
    choice = accumulate(client_stream("stream_tool")).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None or choice.message.content == ""
    [call] = choice.message.tool_calls or []
    assert (call.id, call.function.name) == ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert orjson.loads(call.function.arguments) == {"city": "Paris", "unit": "c"}


def test_the_sdk_accumulates_two_tool_calls_and_the_usage() -> None:
    completion = accumulate(client_stream("stream_two_tools"))
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Checking both.", "tool_calls")
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
    # A tool that streamed no input gets "{}", as OpenAI sends for a call without arguments.
    assert calls == [("toolu_01A", "get_weather", '{"city":"Paris"}'), ("toolu_01B", "now", "{}")]
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (25, 70)


def test_max_tokens_is_length() -> None:
    # The SDK's stream helper raises for a length stop, with what it accumulated.
    with pytest.raises(openai.LengthFinishReasonError) as caught:
        accumulate(client_stream("stream_max_tokens"))
    choice = caught.value.completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("A very long", "length")


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    expected = {
        "prompt_tokens": 3210,
        "completion_tokens": 7,
        "total_tokens": 3217,
        "prompt_tokens_details": {"cached_tokens": 3000},
    }
    for include_usage in (True, False):
        stream = events(include_usage)
        relay(stream, [upstream("stream_usage")])
        assert stream.usage == expected  # recorded by the gateway either way
    [*_, last] = sse_events(client_stream("stream_usage_included"))
    assert last["choices"] == [] and last["usage"] == expected
    assert all("usage" not in chunk for chunk in sse_events(client_stream("stream_usage_omitted")))


def test_usage_before_message_delta_has_the_input_tokens() -> None:
    stream = events(False)
    assert stream.usage is None
    first = upstream("stream_text").split(b"\n\n")[0]
    stream.feed("message_start", first.split(b"data: ", 1)[1])
    assert stream.usage == {
        "prompt_tokens": 25,
        "completion_tokens": 1,
        "total_tokens": 26,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_an_error_event_raises_with_anthropics_status() -> None:
    stream = events(False)
    data = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    with pytest.raises(UpstreamStatusError) as caught:
        stream.feed("error", data)
    assert (caught.value.status_code, caught.value.message, caught.value.code) == (
        529,
        "Overloaded",
        "overloaded_error",
    )
    [*_, error] = sse_events(client_stream("stream_error"))
    assert error == {
        "error": {"message": "Overloaded", "type": "server_error", "param": None, "code": "overloaded_error"}
    }


@pytest.mark.parametrize(
    ("error_type", "status"),
    [("rate_limit_error", 429), ("api_error", 500), ("invalid_request_error", 400), ("new_error", 500)],
)
def test_error_event_statuses(error_type: str, status: int) -> None:
    data = orjson.dumps({"type": "error", "error": {"type": error_type, "message": "m"}})
    with pytest.raises(UpstreamStatusError) as caught:
        events(False).feed("error", data)
    assert caught.value.status_code == status


def test_a_cut_off_stream_fails_at_its_end() -> None:
    stream = events(False)
    relay_out = relay(stream, [upstream("stream_cut_off")])
    assert not stream.ended
    with pytest.raises(UpstreamProtocolError):
        stream.end()
    assert relay_out.endswith(b'"code":"upstream_protocol_error"}}\n\n')


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("message_start", b"{not json"),
        (
            "content_block_delta",
            b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}',
        ),
        ("message_start", b"[]"),
    ],
)
def test_malformed_events_are_protocol_errors(event: str, data: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        events(False).feed(event, data)


START = (
    b'{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1,"output_tokens":1}}}'
)


@pytest.mark.parametrize(
    ("event", "data", "named"),
    [
        (
            "content_block_start",
            b'{"index":0,"content_block":{"type":"server_tool_use","id":"s","name":"web_search"}}',
            "server_tool_use",
        ),
        (
            "content_block_start",
            b'{"index":0,"content_block":{"type":"web_search_tool_result","tool_use_id":"s"}}',
            "web_search_tool_result",
        ),
        (
            "content_block_delta",
            b'{"index":0,"delta":{"type":"citations_delta","citation":{}}}',
            "citations_delta",
        ),
        (
            "message_delta",
            b'{"delta":{"stop_reason":"pause_turn"},"usage":{"output_tokens":1}}',
            "pause_turn",
        ),
    ],
)
def test_what_chat_cannot_show_is_a_protocol_error(event: str, data: bytes, named: str) -> None:
    stream = events(False)
    stream.feed("message_start", START)
    stream.feed("content_block_start", b'{"index":0,"content_block":{"type":"text","text":""}}')
    with pytest.raises(UpstreamProtocolError, match=named):
        stream.feed(event, data)


def test_unknown_events_and_pings_give_nothing() -> None:
    stream = events(False)
    assert stream.feed("ping", b'{"type": "ping"}') == b""
    stream.feed("message_start", START)
    assert stream.feed("future_event", b'{"type":"future_event"}') == b""


class Upstream:
    """A ByteStream over fixed reads."""

    def __init__(self, reads: list[bytes]) -> None:
        self._reads = reads
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._reads:
            yield chunk

    @property
    def complete(self) -> bool:
        return True

    async def aclose(self) -> None:
        self.closed = True


async def test_the_event_relay_sends_the_golden() -> None:
    body = {"model": "claude", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    source = Upstream([upstream("stream_two_tools")])
    stats = StreamStats(stream_id="s1", provider="anthropic", model="claude")
    relayed = translator(body, stream=True).open_relay(source, stats, [])
    await relayed.prime()
    out = b"".join([frames async for frames in relayed.frames()])
    await relayed.aclose()
    assert out == client_stream("stream_two_tools")
    assert source.closed
    assert stats.usage is not None and stats.usage["completion_tokens"] == 70


def test_a_streamed_thinking_turn_goes_back_to_anthropic_as_it_came() -> None:
    message = accumulate(client_stream("stream_thinking")).choices[0].message
    extra = message.model_extra or {}
    assistant = {
        "role": "assistant",
        "content": message.content,
        "reasoning_content": extra["reasoning_content"],
        "thinking_blocks": extra["thinking_blocks"],
    }
    body = {"model": "claude", "messages": [{"role": "user", "content": "2+2?"}, assistant]}
    sent = orjson.loads(translator(body).request_body(body, "claude-sonnet-4-5"))
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": [
            {
                "type": "thinking",
                "thinking": "Let me think about 2+2.",
                "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
            },
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
            {"type": "text", "text": "It is 4."},
        ],
    }
