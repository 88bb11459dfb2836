"""An Anthropic Messages request as an OpenAI chat request: exact, or refused with a 400 naming the field.

What does not carry over exactly is refused (`InvalidRequest`, code `unsupported_field`, `param` the path
such as `messages[2].content[0]`), never dropped, except what chat targets have no use for:

- `cache_control` anywhere (chat servers cache prompts on their own);
- a thinking block's `signature` (only Anthropic checks it); its text goes as `reasoning_content`.

Mappings that are not one to one, chosen here:

- a tool result with `is_error: true` becomes a `tool` message whose text starts with "Error: " (chat has
  no such flag);
- `thinking: {type: enabled, budget_tokens: N}` becomes `reasoning_effort`: "low" below 4096, "medium"
  below 16384, else "high"; `{type: disabled}` sends nothing;
- `top_k` goes as `top_k` (Ollama, vLLM and other OpenAI-compatible servers read it; OpenAI refuses it);
- `max_tokens` keeps its name (DeepSeek, Ollama, 01.AI read it, not `max_completion_tokens`);
- one text block (system, user, assistant, tool result) becomes a plain string, several become text parts.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidRequest

# Top-level fields this pair reads; any other field is refused. `cache_control` is dropped.
TOP_LEVEL = frozenset(
    (
        "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences",
        "metadata", "stream", "thinking", "tools", "tool_choice", "cache_control",
    )
)  # fmt: skip
# Body fields meant for the gateway itself; they never reach a provider.
GATEWAY_FIELDS = frozenset(("x_use_asgi_streaming",))
TOOL_FIELDS = frozenset(("name", "description", "input_schema", "type", "strict", "cache_control"))
BLOCK_FIELDS: dict[str, frozenset[str]] = {
    "text": frozenset(("type", "text", "cache_control", "citations")),
    "image": frozenset(("type", "source", "cache_control")),
    "tool_use": frozenset(("type", "id", "name", "input", "cache_control")),
    "tool_result": frozenset(("type", "tool_use_id", "content", "is_error", "cache_control")),
    "thinking": frozenset(("type", "thinking", "signature", "cache_control")),
}
# Which block types each role may carry over to chat.
ROLE_BLOCKS: dict[str, frozenset[str]] = {
    "user": frozenset(("text", "image", "tool_result")),
    "assistant": frozenset(("text", "tool_use", "thinking")),
    "system": frozenset(("text",)),
}
# What a block may hold: by role, and inside a tool result (text only: a tool message carries no image).
CONTAINER_BLOCKS: dict[str, frozenset[str]] = {**ROLE_BLOCKS, "tool_result": frozenset(("text",))}
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
# budget_tokens below each bound -> that effort; above the last: "high".
EFFORT_BOUNDS = ((4096, "low"), (16384, "medium"))


def refuse(param: str, what: str) -> InvalidRequest:
    return InvalidRequest(
        f"{param}: {what} cannot be sent to this model's upstream (OpenAI chat)",
        param=param,
        code="unsupported_field",
    )


def invalid(param: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {what}", param=param, code="invalid_value")


def chat_request(body: dict[str, Any], upstream_model: str, *, stream_usage: bool) -> dict[str, Any]:
    """The chat request for the Messages request `body` (not mutated). `stream_usage`: ask for the usage
    chunk at the end of a stream (the Anthropic usage is built from it)."""
    for name in body:
        if name not in TOP_LEVEL and name not in GATEWAY_FIELDS:
            raise refuse(name, f"the field {name!r}")
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system is not None:
        messages.append({"role": "system", "content": _text_content(system, "system")})
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list):
        raise invalid("messages", "must be a list of messages")
    for position, message in enumerate(raw_messages):
        messages.extend(_messages(message, f"messages[{position}]"))
    out: dict[str, Any] = {"model": upstream_model, "messages": messages}
    for name in ("max_tokens", "temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
            raise invalid("stop_sequences", "must be a list of strings")
        out["stop"] = stop
    metadata = body.get("metadata")
    if metadata is not None:
        user = _metadata_user(metadata)
        if user is not None:
            out["user"] = user
    thinking = body.get("thinking")
    if thinking is not None:
        effort = _reasoning_effort(thinking)
        if effort is not None:
            out["reasoning_effort"] = effort
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid("tools", "must be a list of tools")
        out["tools"] = [_tool(tool, f"tools[{position}]") for position, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is not None:
        out.update(_tool_choice(choice))
    if body.get("stream") is not None:
        out["stream"] = body["stream"]
        if body["stream"] and stream_usage:
            out["stream_options"] = {"include_usage": True}
    return out


def _messages(message: Any, path: str) -> list[dict[str, Any]]:
    """One Messages turn as chat messages: a user turn's tool results come first, as `tool` messages."""
    if not isinstance(message, dict):
        raise invalid(path, "must be an object")
    for name in message:
        if name not in ("role", "content"):
            raise refuse(f"{path}.{name}", f"the field {name!r}")
    role = message.get("role")
    if role not in ROLE_BLOCKS:
        raise invalid(f"{path}.role", f"unknown role {role!r}")
    content = message.get("content")
    path = f"{path}.content"
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list) or not content:
        raise invalid(path, "must be a string or a non-empty list of content blocks")
    for position, block in enumerate(content):
        _check_block(block, role, f"{path}[{position}]")
    if role == "system":
        return [{"role": "system", "content": _text_content(content, path)}]
    if role == "assistant":
        return [_assistant(content, path)]
    return _user_turn(content, path)


def _check_block(block: Any, container: str, path: str) -> None:
    if not isinstance(block, dict):
        raise invalid(path, "must be a content block object")
    kind = block.get("type")
    if kind not in CONTAINER_BLOCKS[container]:
        where = "a tool_result" if container == "tool_result" else f"a {container} message"
        raise refuse(f"{path}.type", f"a {kind!r} block in {where}")
    allowed = BLOCK_FIELDS[kind]
    for name, value in block.items():
        if name not in allowed:
            raise refuse(f"{path}.{name}", f"the field {name!r} of a {kind!r} block")
        if name == "citations" and value:
            raise refuse(f"{path}.citations", "citations")


def _user_turn(content: list[Any], path: str) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for position, block in enumerate(content):
        where = f"{path}[{position}]"
        kind = block["type"]
        if kind == "tool_result":
            tools.append(_tool_result(block, where))
        elif kind == "image":
            parts.append(_image(block, where))
        else:
            parts.append(_text_part(block, where))
    if not parts:
        return tools
    return [*tools, {"role": "user", "content": _parts_content(parts)}]


def _assistant(content: list[Any], path: str) -> dict[str, Any]:
    texts: list[dict[str, Any]] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for position, block in enumerate(content):
        where = f"{path}[{position}]"
        kind = block["type"]
        if kind == "text":
            texts.append(_text_part(block, where))
        elif kind == "thinking":
            thought = block.get("thinking")
            if not isinstance(thought, str):
                raise invalid(f"{where}.thinking", "must be a string")
            thoughts.append(thought)
        else:
            calls.append(_tool_call(block, where))
    out: dict[str, Any] = {"role": "assistant", "content": _parts_content(texts) if texts else None}
    if thoughts:
        out["reasoning_content"] = "\n".join(thoughts)
    if calls:
        out["tool_calls"] = calls
    return out


def _tool_call(block: dict[str, Any], path: str) -> dict[str, Any]:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str):
        raise invalid(f"{path}.id", "must be a string")
    if not isinstance(name, str):
        raise invalid(f"{path}.name", "must be a string")
    if not isinstance(arguments, dict):
        raise invalid(f"{path}.input", "must be an object")
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }


def _tool_result(block: dict[str, Any], path: str) -> dict[str, Any]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise invalid(f"{path}.tool_use_id", "must be a string")
    raw = block.get("content")
    content: str | list[dict[str, Any]]
    if raw is None:
        content = ""
    elif isinstance(raw, str):
        content = raw
    elif isinstance(raw, list):
        parts = []
        for position, inner in enumerate(raw):
            where = f"{path}.content[{position}]"
            _check_block(inner, "tool_result", where)
            parts.append(_text_part(inner, where))
        content = _parts_content(parts) if parts else ""
    else:
        raise invalid(f"{path}.content", "must be a string or a list of text blocks")
    if block.get("is_error"):
        if isinstance(content, str):
            content = "Error: " + content
        else:
            content = [{"type": "text", "text": "Error: " + content[0]["text"]}, *content[1:]]
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _text_part(block: dict[str, Any], path: str) -> dict[str, Any]:
    text = block.get("text")
    if not isinstance(text, str):
        raise invalid(f"{path}.text", "must be a string")
    return {"type": "text", "text": text}


def _parts_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One text part as a plain string (what every chat server reads), anything else as parts."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    return parts


def _text_content(value: Any, path: str) -> str | list[dict[str, Any]]:
    """`system` (or a system turn): a string, or text blocks."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        raise invalid(path, "must be a string or a non-empty list of text blocks")
    parts = []
    for position, block in enumerate(value):
        where = f"{path}[{position}]"
        _check_block(block, "system", where)
        parts.append(_text_part(block, where))
    return _parts_content(parts)


def _image(block: dict[str, Any], path: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid(f"{path}.source", "must be an object")
    kind = source.get("type")
    url: Any
    known: tuple[str, ...]
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not isinstance(data, str):
            raise invalid(f"{path}.source", "a base64 source needs media_type and data strings")
        url = f"data:{media_type};base64,{data}"
        known = ("type", "media_type", "data")
    elif kind == "url":
        url = source.get("url")
        if not isinstance(url, str):
            raise invalid(f"{path}.source.url", "must be a string")
        known = ("type", "url")
    else:
        raise refuse(f"{path}.source.type", f"an image source of type {kind!r}")
    for name in source:
        if name not in known:
            raise refuse(f"{path}.source.{name}", f"the field {name!r} of an image source")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool(tool: Any, path: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise invalid(path, "must be an object")
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise refuse(f"{path}.type", f"the server tool {kind!r}")
    for name in tool:
        if name not in TOOL_FIELDS:
            raise refuse(f"{path}.{name}", f"the tool field {name!r}")
    name, schema = tool.get("name"), tool.get("input_schema")
    if not isinstance(name, str):
        raise invalid(f"{path}.name", "must be a string")
    if not isinstance(schema, dict):
        raise invalid(f"{path}.input_schema", "must be an object")
    function: dict[str, Any] = {"name": name}
    if tool.get("description") is not None:
        function["description"] = tool["description"]
    function["parameters"] = schema
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> dict[str, Any]:
    if not isinstance(choice, dict):
        raise invalid("tool_choice", "must be an object")
    kind = choice.get("type")
    for name in choice:
        if name not in ("type", "name", "disable_parallel_tool_use"):
            raise refuse(f"tool_choice.{name}", f"the field {name!r}")
    out: dict[str, Any]
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str):
            raise invalid("tool_choice.name", "must be a string")
        out = {"tool_choice": {"type": "function", "function": {"name": name}}}
    elif kind in TOOL_CHOICES:
        out = {"tool_choice": TOOL_CHOICES[kind]}
    else:
        raise invalid("tool_choice.type", f"unknown tool choice {kind!r}")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


def _metadata_user(metadata: Any) -> str | None:
    if not isinstance(metadata, dict):
        raise invalid("metadata", "must be an object")
    for name in metadata:
        if name != "user_id":
            raise refuse(f"metadata.{name}", f"the metadata field {name!r}")
    user = metadata.get("user_id")
    if user is not None and not isinstance(user, str):
        raise invalid("metadata.user_id", "must be a string")
    return user


def _reasoning_effort(thinking: Any) -> str | None:
    if not isinstance(thinking, dict):
        raise invalid("thinking", "must be an object")
    kind = thinking.get("type")
    if kind == "disabled":
        known: tuple[str, ...] = ("type",)
    elif kind == "enabled":
        known = ("type", "budget_tokens")
    else:
        raise refuse("thinking.type", f"thinking of type {kind!r}")
    for name in thinking:
        if name not in known:
            raise refuse(f"thinking.{name}", f"the thinking field {name!r}")
    if kind == "disabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise invalid("thinking.budget_tokens", "must be an integer")
    for bound, effort in EFFORT_BOUNDS:
        if budget < bound:
            return effort
    return "high"
