"""An Anthropic `Message` -> an OpenAI `chat.completion` (the answer half of `chat_messages`), and the
pieces the stream translator shares with it: finish reasons, usage, thinking blocks.

Thinking travels as DeepSeek's `reasoning_content` (the text) plus LiteLLM's `thinking_blocks`
(`{type: thinking, thinking, signature}` / `{type: redacted_thinking, data}`), which a client sends back on
its assistant message so that Anthropic gets its signed blocks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway.errors import UpstreamProtocolError

# Anthropic's stop_reason -> chat's finish_reason. `pause_turn` (a server tool's long turn, to be sent
# back as it is) has no chat equivalent: the turn is unfinished, and calling it `stop` would say otherwise.
FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    found = FINISH_REASONS.get(stop_reason) if isinstance(stop_reason, str) else None
    if found is None:
        raise UpstreamProtocolError(f"Anthropic stop_reason {stop_reason!r} cannot be given to a chat client")
    return found


def chat_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """Anthropic usage -> the gateway's (OpenAI chat's) shape: cache reads and writes are prompt tokens."""
    cache_read = _count(usage, "cache_read_input_tokens")
    prompt = _count(usage, "input_tokens") + cache_read + _count(usage, "cache_creation_input_tokens")
    completion = _count(usage, "output_tokens")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise UpstreamProtocolError(f"Anthropic usage.{name} is not an integer: {value!r}")
    return value


def thinking_block(block: Mapping[str, Any]) -> dict[str, Any]:
    """A thinking or redacted_thinking content block as a chat `thinking_blocks` entry."""
    if block.get("type") == "redacted_thinking":
        return {"type": "redacted_thinking", "data": _string(block, "data")}
    return {
        "type": "thinking",
        "thinking": _string(block, "thinking"),
        "signature": _string(block, "signature"),
    }


def _string(block: Mapping[str, Any], name: str) -> str:
    value = block.get(name)
    if not isinstance(value, str):
        raise UpstreamProtocolError(f"Anthropic {block.get('type')} block without a string {name!r}")
    return value


def unshowable(kind: Any) -> UpstreamProtocolError:
    """A content block chat has no place for (server tools, their results, ...)."""
    return UpstreamProtocolError(f"Anthropic content block of type {kind!r} cannot be shown to a chat client")


def chat_completion(content: bytes, created: int) -> dict[str, Any]:
    """The chat.completion for an Anthropic Message JSON body. Raises `UpstreamProtocolError`."""
    try:
        message = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(f"Anthropic answer is not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise UpstreamProtocolError("Anthropic answer is not a Message (no content list)")
    texts: list[str] = []
    thinking: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in message["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            if block.get("citations"):
                raise UpstreamProtocolError("Anthropic text with citations cannot be shown to a chat client")
            texts.append(_string(block, "text"))
        elif kind in ("thinking", "redacted_thinking"):
            thinking.append(thinking_block(block))
        elif kind == "tool_use":
            tool_input = block.get("input")
            if not isinstance(tool_input, dict):
                raise UpstreamProtocolError("Anthropic tool_use block without an input object")
            arguments = orjson.dumps(tool_input).decode()
            function = {"name": _string(block, "name"), "arguments": arguments}
            tool_calls.append({"id": _string(block, "id"), "type": "function", "function": function})
        else:
            raise unshowable(kind)
    answer: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if thinking:
        answer["reasoning_content"] = "".join(b["thinking"] for b in thinking if b["type"] == "thinking")
        answer["thinking_blocks"] = thinking
    if tool_calls:
        answer["tool_calls"] = tool_calls
    answer["refusal"] = None
    usage = message.get("usage")
    return {
        "id": "chatcmpl-" + str(message.get("id", "")),
        "object": "chat.completion",
        "created": created,
        "model": str(message.get("model", "")),
        "choices": [
            {
                "index": 0,
                "message": answer,
                "logprobs": None,
                "finish_reason": finish_reason(message.get("stop_reason")),
            }
        ],
        "usage": chat_usage(usage if isinstance(usage, dict) else {}),
    }
