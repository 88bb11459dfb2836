"""A token count without a tokenizer, for `count_tokens` on a target that has no such endpoint.

About four characters per token for English text and code (OpenAI's and Anthropic's rule of thumb); the
answer says it is an estimate (`x-gateway-token-count: estimate`). Everything the model reads counts: the
system prompt, every text, tool input and tool result, and the tool definitions.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

CHARACTERS_PER_TOKEN = 4


def estimate_input_tokens(body: dict[str, Any]) -> int:
    characters = _characters(body.get("system")) + _characters(body.get("messages"))
    tools = body.get("tools")
    if tools:
        characters += len(orjson.dumps(tools))
    return max(1, math.ceil(characters / CHARACTERS_PER_TOKEN))


def _characters(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(_characters(item) for item in value)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "image" or kind == "document":
            return 1600 * CHARACTERS_PER_TOKEN // 4  # an image is ~1,600 tokens at most; count a fair share
        if kind == "tool_use":
            return len(orjson.dumps(value.get("input", {})))
        total = 0
        for key in ("text", "content", "thinking"):
            if key in value:
                total += _characters(value[key])
        return total
    return 0
