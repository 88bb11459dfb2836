"""The output tokens of a stream cut before its usage arrived: the text the client got, read back from
the frames the relay handed it (`StreamStats.streamed`) and counted under cl100k.

Runs once per cut stream, never per chunk: the relay only keeps references to what it sent. Every client
API's frames are read by their shape, so no API name is needed: chat and completions chunks (`choices`:
content, reasoning, refusal, tool-call names and arguments, completion text), Messages events
(`content_block_start` / `content_block_delta`: text, thinking, tool input JSON) and Responses events
(`response.*.delta`: output text, reasoning, refusal, function-call arguments). Text is joined per choice,
block or output item before it is encoded, as the model produced it; an event that is not JSON (a cut
one, `[DONE]`) is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import orjson

from gateway.streaming.sse import DONE, SSEParser
from gateway.streaming.stats import STREAMED_LIMIT, StreamStats
from gateway.translate.tokenizer import Tokenizer

_CHAT_DELTA_KEYS = ("content", "reasoning_content", "reasoning", "refusal")
_MESSAGES_DELTA_KEYS = ("text", "thinking", "partial_json")
_RESPONSES_TEXT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        "response.function_call_arguments.delta",
    }
)


def streamed_texts(pieces: Iterable[bytes]) -> dict[tuple[Any, ...], list[str]]:
    """The texts the client got, by where they belong (choice, block or output item)."""
    parser = SSEParser()
    payloads = parser.feed(b"".join(pieces))
    payloads.extend(parser.flush())
    texts: dict[tuple[Any, ...], list[str]] = {}
    for payload in payloads:
        if payload == DONE:
            continue
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict):
            _read_event(event, texts)
    return texts


def count_streamed(tokenizer: Tokenizer, pieces: Iterable[bytes]) -> int:
    """The output tokens of what the client got."""
    return sum(tokenizer.count("".join(parts)) for parts in streamed_texts(pieces).values())


def count_output(tokenizer: Tokenizer, stats: StreamStats) -> int:
    """The output tokens of a cut stream. Past `STREAMED_LIMIT` nothing more was kept: the rest counts
    the kept part's tokens per byte. Nothing kept (no prices when the stream began): a token per event."""
    pieces = stats.streamed
    if pieces is None:
        return stats.chunks
    tokens = count_streamed(tokenizer, pieces)
    kept = sum(len(piece) for piece in pieces)
    if stats.bytes > STREAMED_LIMIT and kept:
        tokens += math.ceil(tokens * (stats.bytes - kept) / kept)
    return tokens


def _read_event(event: dict[str, Any], texts: dict[tuple[Any, ...], list[str]]) -> None:
    choices = event.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, dict):
                _read_choice(choice, texts)
        return
    kind = event.get("type")
    if kind == "content_block_delta":
        delta = event.get("delta")
        if isinstance(delta, dict):
            for key in _MESSAGES_DELTA_KEYS:
                _add(texts, ("block", event.get("index"), key), delta.get(key))
    elif kind == "content_block_start":
        block = event.get("content_block")
        if isinstance(block, dict):
            _add(texts, ("block", event.get("index"), "name"), block.get("name"))
            _add(texts, ("block", event.get("index"), "text"), block.get("text"))
    elif kind in _RESPONSES_TEXT_DELTAS:
        _add(texts, ("item", event.get("output_index"), kind), event.get("delta"))
    elif kind == "response.output_item.added":
        item = event.get("item")
        if isinstance(item, dict):
            _add(texts, ("item", event.get("output_index"), "name"), item.get("name"))


def _read_choice(choice: dict[str, Any], texts: dict[tuple[Any, ...], list[str]]) -> None:
    index = choice.get("index")
    _add(texts, ("choice", index, "text"), choice.get("text"))  # completions
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return
    for key in _CHAT_DELTA_KEYS:
        _add(texts, ("choice", index, key), delta.get(key))
    for call in delta.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            where = ("choice", index, "tool", call.get("index"))
            _add(texts, (*where, "name"), function.get("name"))
            _add(texts, (*where, "arguments"), function.get("arguments"))


def _add(texts: dict[tuple[Any, ...], list[str]], where: tuple[Any, ...], text: Any) -> None:
    if isinstance(text, str) and text:
        texts.setdefault(where, []).append(text)
