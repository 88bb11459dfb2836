"""Prompt tokens of every inbound API and output tokens of what a stream handed its client, under cl100k.

The cookbook's published counts anchor the framing (129 for its corporate-jargon chat, 105 for its weather
tool); the rest is checked against tiktoken's own encoding (`oracle_count`) with the framing written out.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.streaming.stats import STREAMED_LIMIT, StreamStats
from gateway.translate.prompt_tokens import IMAGE_TOKENS, count_messages, count_prompt, count_tools
from gateway.translate.streamed_tokens import count_output, count_streamed, streamed_texts
from gateway.translate.tokenizer import Tokenizer, load_cl100k
from tests.support.cl100k_oracle import oracle_count

# OpenAI's cookbook, "How to count tokens with tiktoken": 129 prompt tokens on gpt-3.5-turbo and gpt-4.
JARGON = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate jargon into "
        "plain English.",
    },
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
        "increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
    },
]
# The cookbook's tool example: 105 prompt tokens on gpt-3.5-turbo and gpt-4.
WEATHER_TOOL = {
    "name": "get_current_weather",
    "description": "Get the current weather in a given location",
    "parameters": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {
                "type": "string",
                "description": "The unit of temperature to return",
                "enum": ["celsius", "fahrenheit"],
            },
        },
        "required": ["location"],
    },
}
WEATHER_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


@pytest.fixture(scope="module")
def cl100k() -> Tokenizer:
    return load_cl100k()


def framed(*messages: tuple[str, str]) -> int:
    """The cookbook's count for (role, text) messages, by the oracle."""
    return 3 + sum(3 + oracle_count(role) + oracle_count(text) for role, text in messages)


def test_the_cookbooks_chat_count(cl100k: Tokenizer) -> None:
    assert count_messages(cl100k, JARGON) == 129
    assert count_prompt(cl100k, {"model": "gpt-4", "messages": JARGON}) == 129


def test_the_cookbooks_tool_count_in_every_apis_tool_shape(cl100k: Tokenizer) -> None:
    chat = {"messages": WEATHER_MESSAGES, "tools": [{"type": "function", "function": WEATHER_TOOL}]}
    assert count_prompt(cl100k, chat) == 105
    tools = 105 - framed(*((message["role"], message["content"]) for message in WEATHER_MESSAGES))
    responses_tool = {"type": "function", **WEATHER_TOOL}
    assert count_tools(cl100k, [responses_tool]) == count_tools(cl100k, chat["tools"]) == tools
    messages_tool = {
        "name": WEATHER_TOOL["name"],
        "description": WEATHER_TOOL["description"],
        "input_schema": WEATHER_TOOL["parameters"],
    }
    assert count_tools(cl100k, [messages_tool]) == tools


def test_a_built_in_tool_counts_as_its_json(cl100k: Tokenizer) -> None:
    tool = {"type": "web_search_preview", "search_context_size": "low"}
    assert count_tools(cl100k, [tool]) == oracle_count(orjson.dumps(tool).decode()) + 12


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        (  # Messages: `system` is a system message; content blocks are read by their text
            {
                "system": "Be brief.",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello there friend"}]}],
            },
            [("system", "Be brief."), ("user", "Hello there friend")],
        ),
        (  # Messages: system as blocks
            {
                "system": [{"type": "text", "text": "Be brief."}],
                "messages": [{"role": "user", "content": "Hi"}],
            },
            [("system", "Be brief."), ("user", "Hi")],
        ),
        (  # Responses: `input` a string, `instructions` the system message
            {"instructions": "Be brief.", "input": "Hello there friend"},
            [("system", "Be brief."), ("user", "Hello there friend")],
        ),
        (  # Responses: input items
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": "Hello there friend"}]}]},
            [("user", "Hello there friend")],
        ),
    ],
)
def test_prompts_of_the_message_apis(cl100k: Tokenizer, body: dict[str, Any], messages: list[Any]) -> None:
    assert count_prompt(cl100k, {"model": "m", **body}) == framed(*messages)


def test_tool_calls_and_results_in_history_count(cl100k: Tokenizer) -> None:
    arguments = '{"location": "Paris"}'
    chat = [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]  # fmt: skip
    expected = 3 + (3 + oracle_count("assistant") + oracle_count("weather") + oracle_count(arguments))
    expected += 3 + oracle_count("tool") + oracle_count("sunny")
    assert count_messages(cl100k, chat) == expected
    messages = [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "weather",
                                           "input": {"location": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                                     {"type": "image", "source": {"type": "base64", "data": "AAAA"}}]},
    ]  # fmt: skip
    expected = 3 + (
        3 + oracle_count("assistant") + oracle_count("weather") + oracle_count('{"location":"Paris"}')
    )
    expected += 3 + oracle_count("user") + oracle_count("sunny") + IMAGE_TOKENS
    assert count_messages(cl100k, messages) == expected


@pytest.mark.parametrize(
    ("prompt", "tokens"),
    [("tiktoken is great!", 6), (["tiktoken is great!", "hello world"], 8), ([83, 1609, 5963], 3)],
)
def test_completion_prompts_have_no_framing(cl100k: Tokenizer, prompt: Any, tokens: int) -> None:
    assert count_prompt(cl100k, {"model": "m", "prompt": prompt}) == tokens


def sse(*events: dict[str, Any], named: bool = False) -> bytes:
    frames = []
    for event in events:
        head = f"event: {event['type']}\n".encode() if named else b""
        frames.append(head + b"data: " + orjson.dumps(event) + b"\n\n")
    return b"".join(frames)


def chat_chunk(**delta: Any) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}


def test_chat_stream_text_reasoning_and_tool_calls(cl100k: Tokenizer) -> None:
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"lo'}}
    more = {"index": 0, "function": {"arguments": 'cation": "Paris"}'}}
    pieces = [
        sse(chat_chunk(role="assistant", content=""), chat_chunk(reasoning_content="Let me think")),
        sse(chat_chunk(content="Hello"), chat_chunk(content=" there, friend")),
        sse(chat_chunk(tool_calls=[call]), chat_chunk(tool_calls=[more])) + b"data: [DONE]\n\n",
    ]
    expected = (
        oracle_count("Let me think")
        + oracle_count("Hello there, friend")
        + oracle_count("weather")
        + oracle_count('{"location": "Paris"}')
    )
    assert count_streamed(cl100k, pieces) == expected


def test_a_piece_split_inside_an_event_and_a_cut_last_event(cl100k: Tokenizer) -> None:
    whole = sse(chat_chunk(content="Hello"), chat_chunk(content=" world"))
    cut = b'data: {"choices": [{"index": 0, "delta": {"content": " lost'
    assert count_streamed(cl100k, [whole[:17], whole[17:], cut]) == oracle_count("Hello world")


def test_completions_stream_text(cl100k: Tokenizer) -> None:
    events = [
        {"object": "text_completion", "choices": [{"index": 0, "text": part}]} for part in ("Once", " upon")
    ]
    assert count_streamed(cl100k, [sse(*events)]) == oracle_count("Once upon")


def test_messages_stream_text_thinking_and_tool_input(cl100k: Tokenizer) -> None:
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm, "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "well"}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello from"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " Claude"}},
        {"type": "content_block_start", "index": 2,
         "content_block": {"type": "tool_use", "id": "t1", "name": "weather", "input": {}}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "input_json_delta", "partial_json": '{"location": '}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
    ]  # fmt: skip
    expected = (
        oracle_count("Hmm, well")
        + oracle_count("Hello from Claude")
        + oracle_count("weather")
        + oracle_count('{"location": "Paris"}')
    )
    assert count_streamed(cl100k, [sse(*events, named=True)]) == expected


def test_responses_stream_text_reasoning_and_arguments(cl100k: Tokenizer) -> None:
    events = [
        {"type": "response.created", "response": {"id": "r1", "output": []}},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": "Thinking it"},
        {"type": "response.reasoning_summary_text.delta", "output_index": 0, "delta": " over"},
        {"type": "response.output_text.delta", "output_index": 1, "content_index": 0, "delta": "Hello"},
        {"type": "response.output_text.delta", "output_index": 1, "content_index": 0, "delta": " there"},
        {"type": "response.output_item.added", "output_index": 2,
         "item": {"type": "function_call", "name": "weather", "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "output_index": 2,
         "delta": '{"location": "Paris"}'},
    ]  # fmt: skip
    texts = streamed_texts([sse(*events, named=True)])
    assert sorted("".join(parts) for parts in texts.values()) == sorted(
        ["Thinking it over", "Hello there", "weather", '{"location": "Paris"}']
    )
    expected = sum(
        oracle_count(t) for t in ("Thinking it over", "Hello there", "weather", '{"location": "Paris"}')
    )
    assert count_streamed(cl100k, [sse(*events, named=True)]) == expected


def cut_stats(streamed: list[bytes] | None, *, size: int, events: int) -> StreamStats:
    stats = StreamStats("req", "sim", "m", bytes=size, chunks=events, status="error")
    stats.streamed = streamed
    return stats


def test_a_stream_within_the_limit_counts_what_was_kept(cl100k: Tokenizer) -> None:
    piece = sse(chat_chunk(content="Hello world"), chat_chunk(content=" again"))  # 3 tokens
    error_frame = 150  # counted in the stream's bytes, never kept: no scaling for it
    assert count_output(cl100k, cut_stats([piece], size=len(piece) + error_frame, events=2)) == 3


def test_past_the_limit_the_rest_counts_the_kept_tokens_per_byte(cl100k: Tokenizer) -> None:
    piece = sse(chat_chunk(content="Hello world"), chat_chunk(content=" again"))  # 3 tokens
    kept = [piece] * (STREAMED_LIMIT // len(piece))
    size = 3 * sum(len(p) for p in kept)  # two thirds of the stream were not kept
    assert count_output(cl100k, cut_stats(kept, size=size, events=2 * len(kept))) == 3 * 3 * len(kept)


def test_nothing_kept_counts_an_event_a_token(cl100k: Tokenizer) -> None:
    assert count_output(cl100k, cut_stats(None, size=900, events=7)) == 7
    assert count_output(cl100k, cut_stats([], size=900, events=7)) == 0  # kept, and nothing was text
