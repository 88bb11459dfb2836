"""Token counts without a tokenizer: an estimate (`estimate_input_tokens`) and a bound (`most_input_tokens`).

The estimate is for when no tokenizer could load (`count_tokens` on a target without that endpoint, a cut
stream's prompt; both count with cl100k otherwise): about four characters per token for English text and
code (OpenAI's and Anthropic's rule of thumb), far fewer than the real count for CJK text.

The bound is for a budget's hold, which must never be less than what the request can cost: four
characters per token undercounts Chinese or Japanese text about fourfold (a character is a token or
more). Byte-level BPE tokenizers (OpenAI's, Anthropic's, DeepSeek's, Qwen's, Yi's) never make a token
of less than one byte, so the UTF-8 bytes of the text bound its tokens, plus each message's few
formatting tokens. Everything the model reads counts: the system prompt, every text, tool input and tool
result, and the tool definitions.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

CHARACTERS_PER_TOKEN = 4
# The chat format's tokens around each message (its role and separators: 3 or 4 with cl100k) and before
# the answer (3); Anthropic's Messages format spends fewer.
TOKENS_PER_MESSAGE = 4
TOKENS_BEFORE_ANSWER = 3
IMAGE_TOKENS = 1600  # the most an image costs (Anthropic resizes to ~1.15 megapixels; OpenAI tiles less)


def estimate_input_tokens(body: dict[str, Any]) -> int:
    characters = _characters(body.get("system")) + _characters(body.get("messages"))
    tools = body.get("tools")
    if tools:
        characters += len(orjson.dumps(tools))
    return max(1, math.ceil(characters / CHARACTERS_PER_TOKEN))


def most_input_tokens(body: dict[str, Any]) -> int:
    """At most how many tokens the model reads of `body` (`system`, `messages`, `tools`)."""
    messages = body.get("messages")
    count = _bytes(body.get("system")) + _bytes(messages) + TOKENS_BEFORE_ANSWER
    if isinstance(messages, list):
        count += TOKENS_PER_MESSAGE * len(messages)
    elif messages is not None:
        count += TOKENS_PER_MESSAGE  # a Responses or completions string input is one message
    tools = body.get("tools")
    if tools:
        count += len(orjson.dumps(tools))
    return count


def _bytes(value: Any) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return sum(_bytes(item) for item in value)
    if isinstance(value, dict):
        kind = value.get("type")
        if kind in ("image", "image_url", "input_image"):
            return IMAGE_TOKENS
        if kind in ("tool_use", "document", "file", "input_file", "function_call"):
            return len(orjson.dumps(value))  # a document's pages: its base64 data bounds their tokens
        total = 0
        for key in (
            "text",
            "content",
            "thinking",
            "arguments",
            "output",
            "refusal",
            "summary",
            "role",
            "name",
        ):
            if key in value:
                total += _bytes(value[key])
        return total
    return 0


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
