"""A request's prompt tokens under cl100k, for every inbound API, counted the way OpenAI's cookbook "How
to count tokens with tiktoken" does for its cl100k chat models (gpt-3.5-turbo, gpt-4).

Each message costs 3 tokens of framing, plus 1 when it has a `name`, and the reply is primed with 3 more;
its role, name and every text the model reads count as they encode. Tool definitions cost what the
cookbook measured for cl100k (10 per function, 3 per parameter, 12 in all, ...). Chat and Messages read
`messages` (and `system`), Responses `input` (and `instructions`), completions `prompt`, without framing.
Exact for OpenAI's cl100k models, an estimate for every other model (other tokenizers, other framing).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.translate.tokenizer import Tokenizer

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3  # <|start|>assistant<|message|>
IMAGE_TOKENS = 85  # an image of unknown size: OpenAI's low-detail price, the least any image costs
# The cookbook's tool framing for cl100k models (num_tokens_for_tools, gpt-3.5-turbo and gpt-4).
FUNCTION_INIT, PROPERTIES_INIT, PROPERTY_KEY, ENUM_INIT, ENUM_ITEM, FUNCTIONS_END = 10, 3, 3, -3, 3, 12
# Keys of a message or content part whose values the model reads; the rest are ids, types and flags.
_READ_KEYS = ("content", "text", "thinking", "arguments", "output", "refusal", "summary", "input")
_IMAGE_TYPES = frozenset({"image", "image_url", "input_image", "document", "input_file", "file"})


def count_prompt(tokenizer: Tokenizer, body: dict[str, Any]) -> int:
    """The prompt tokens of a request body of any inbound API."""
    prompt = body.get("prompt")
    if prompt is not None and "messages" not in body and "input" not in body:
        return _count_completion_prompt(tokenizer, prompt)
    messages: list[Any] = []
    system = body.get("system") if "messages" in body else body.get("instructions")
    if system:
        messages.append({"role": "system", "content": system})
    read = body.get("messages") if "messages" in body else body.get("input")
    if isinstance(read, str):
        messages.append({"role": "user", "content": read})
    elif isinstance(read, list):
        messages.extend(read)
    total = count_messages(tokenizer, messages)
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        total += count_tools(tokenizer, tools)
    return total


def count_messages(tokenizer: Tokenizer, messages: list[Any]) -> int:
    """The cookbook's `num_tokens_from_messages` for cl100k, over content of every API's shape."""
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        if not isinstance(message, dict):
            total += _count_value(tokenizer, message)
            continue
        role, name = message.get("role"), message.get("name")
        if isinstance(role, str):
            total += tokenizer.count(role)
        if isinstance(name, str) and "role" in message:
            total += TOKENS_PER_NAME + tokenizer.count(name)
        total += _count_parts(tokenizer, message)
        for call in message.get("tool_calls") or ():  # an assistant's calls in chat history
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                total += tokenizer.count(str(function.get("name") or ""))
                total += tokenizer.count(str(function.get("arguments") or ""))
    return total


def count_tools(tokenizer: Tokenizer, tools: list[Any]) -> int:
    """The cookbook's `num_tokens_for_tools` for cl100k. Chat's `{type, function}`, Messages'
    `{name, input_schema}` and Responses' `{type, name, parameters}` alike; a tool of another kind (a
    built-in such as web search) counts as its JSON."""
    total = 0
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        inner = tool.get("function")
        function: dict[str, Any] = inner if isinstance(inner, dict) else tool
        name = function.get("name")
        schema = function.get("parameters", function.get("input_schema"))
        if not isinstance(name, str) or not (schema is None or isinstance(schema, dict)):
            total += tokenizer.count(orjson.dumps(tool).decode())
            continue
        total += FUNCTION_INIT + tokenizer.count(f"{name}:{_without_period(function.get('description'))}")
        properties = (schema or {}).get("properties")
        if isinstance(properties, dict) and properties:
            total += PROPERTIES_INIT
            for key, spec in properties.items():
                total += PROPERTY_KEY
                spec = spec if isinstance(spec, dict) else {}
                enum = spec.get("enum")
                if isinstance(enum, list):
                    total += ENUM_INIT + sum(ENUM_ITEM + tokenizer.count(str(item)) for item in enum)
                kind = spec.get("type", "")
                line = f"{key}:{kind if isinstance(kind, str) else orjson.dumps(kind).decode()}:"
                total += tokenizer.count(line + _without_period(spec.get("description")))
    return total + FUNCTIONS_END if total else 0


def _count_completion_prompt(tokenizer: Tokenizer, prompt: Any) -> int:
    if isinstance(prompt, str):
        return tokenizer.count(prompt)
    if isinstance(prompt, list):
        if all(isinstance(item, int) for item in prompt):
            return len(prompt)  # already tokens
        return sum(_count_completion_prompt(tokenizer, item) for item in prompt)
    return 0


def _count_parts(tokenizer: Tokenizer, holder: dict[str, Any]) -> int:
    """The tokens of what the model reads in a message, a content part or an input item."""
    if holder.get("type") in _IMAGE_TYPES:
        return IMAGE_TOKENS
    total = 0
    if holder.get("type") in ("tool_use", "function_call"):
        total += tokenizer.count(str(holder.get("name") or ""))
    for key in _READ_KEYS:
        if key in holder:
            total += _count_value(tokenizer, holder[key])
    return total


def _count_value(tokenizer: Tokenizer, value: Any) -> int:
    if isinstance(value, str):
        return tokenizer.count(value)
    if isinstance(value, list):
        return sum(_count_value(tokenizer, item) for item in value)
    if isinstance(value, dict):
        if "type" not in value and not any(key in value for key in _READ_KEYS):
            return tokenizer.count(orjson.dumps(value).decode())  # a tool call's input object
        return _count_parts(tokenizer, value)
    return 0


def _without_period(description: Any) -> str:
    text = description if isinstance(description, str) else ""
    return text[:-1] if text.endswith(".") else text
