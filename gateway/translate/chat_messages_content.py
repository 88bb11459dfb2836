"""OpenAI chat messages -> Anthropic Messages turns (the `system` prompt and `messages` list).

Exact or refused: every part or field that has no exact place in a Messages request raises `InvalidRequest`
(code `unsupported_field`) naming its path, e.g. `messages[2].content[0].image_url.detail`. Nothing is
silently dropped; `None` values count as absent (clients often send explicit nulls).
"""

from __future__ import annotations

import binascii
from typing import Any

import orjson

from gateway.errors import InvalidRequest

UNSUPPORTED = "unsupported_field"
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

# The keys each role may carry (None values aside); any other key is refused by name.
_ROLE_KEYS = {
    "system": {"role", "content"},
    "developer": {"role", "content"},
    "user": {"role", "content"},
    "assistant": {"role", "content", "tool_calls", "reasoning_content", "thinking_blocks"},
    "tool": {"role", "content", "tool_call_id"},
}


def refuse(what: str, param: str) -> InvalidRequest:
    """A 400 naming the field: in `param`, and at the head of the message for whoever reads only that."""
    return InvalidRequest(
        f"{param}: {what} cannot be sent to an Anthropic Messages upstream", param=param, code=UNSUPPORTED
    )


def malformed(what: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {what}", param=param, code="invalid_value")


def present(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` without its None values."""
    return {key: value for key, value in obj.items() if value is not None}


def convert_messages(messages: Any) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """The `system` value (None: none) and the Messages turns for chat `messages`."""
    if not isinstance(messages, list) or not messages:
        raise malformed("'messages' must be a non-empty array", "messages")
    system_parts: list[list[dict[str, Any]] | str] = []
    turns: list[dict[str, Any]] = []
    tool_turn: list[dict[str, Any]] | None = None  # the open user turn holding tool results
    for position, raw in enumerate(messages):
        path = f"messages[{position}]"
        if not isinstance(raw, dict):
            raise malformed("each message must be an object", path)
        message = present(raw)
        role = message.get("role")
        allowed = _ROLE_KEYS.get(role) if isinstance(role, str) else None
        if allowed is None:
            raise refuse(f"a message with role {role!r}", f"{path}.role")
        for key in message:
            if key not in allowed:
                raise refuse(f"'{key}' on a message of role {role}", f"{path}.{key}")
        if role in ("system", "developer"):
            if turns:
                # Messages has one system prompt before all turns: a later one has no exact place.
                raise refuse(f"a message of role {role} after the first user or assistant message", path)
            system_parts.append(_system_content(message.get("content"), f"{path}.content"))
            continue
        if role == "tool":
            result = _tool_result(message, path)
            if tool_turn is None:
                tool_turn = [result]
                turns.append({"role": "user", "content": tool_turn})
            else:
                tool_turn.append(result)
            continue
        if role == "user":
            blocks = _user_content(message.get("content"), f"{path}.content")
            if tool_turn is not None:
                # Anthropic wants the tool results first in the turn after the tool_use: the user's
                # words join that turn behind them.
                tool_turn.extend([{"type": "text", "text": blocks}] if isinstance(blocks, str) else blocks)
            else:
                turns.append({"role": "user", "content": blocks})
        else:
            turns.append({"role": "assistant", "content": _assistant_content(message, path)})
        tool_turn = None
    return _system(system_parts), turns


def _system(parts: list[list[dict[str, Any]] | str]) -> str | list[dict[str, Any]] | None:
    """One string message stays a string; several messages, or parts, become text blocks one for one."""
    if not parts:
        return None
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    blocks: list[dict[str, Any]] = []
    for part in parts:
        blocks.extend([{"type": "text", "text": part}] if isinstance(part, str) else part)
    return blocks


def _system_content(content: Any, path: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return [_text_part(part, f"{path}[{index}]") for index, part in enumerate(_parts(content, path))]


def _parts(content: Any, path: str) -> list[Any]:
    if not isinstance(content, list):
        raise malformed("content must be a string or an array of content parts", path)
    return content


def _text_part(part: Any, path: str) -> dict[str, Any]:
    """A `{type: text, text}` part; anything else (other types or keys) is refused."""
    part = _part(part, path)
    if part.get("type") != "text":
        raise refuse(f"a content part of type {part.get('type')!r} here", f"{path}.type")
    _only_keys(part, {"type", "text"}, path)
    text = part.get("text")
    if not isinstance(text, str):
        raise malformed("a text part needs a string 'text'", f"{path}.text")
    return {"type": "text", "text": text}


def _part(part: Any, path: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise malformed("each content part must be an object", path)
    return present(part)


def _only_keys(obj: dict[str, Any], allowed: set[str], path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise refuse(f"'{key}'", f"{path}.{key}")


def _user_content(content: Any, path: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for index, raw in enumerate(_parts(content, path)):
        part_path = f"{path}[{index}]"
        part = _part(raw, part_path)
        if part.get("type") == "image_url":
            blocks.append(_image(part, part_path))
        else:
            blocks.append(_text_part(part, part_path))
    return blocks


def _image(part: dict[str, Any], path: str) -> dict[str, Any]:
    _only_keys(part, {"type", "image_url"}, path)
    image = part.get("image_url")
    if not isinstance(image, dict):
        raise malformed("an image_url part needs an 'image_url' object", f"{path}.image_url")
    image = present(image)
    _only_keys(image, {"url", "detail"}, f"{path}.image_url")
    if image.get("detail", "auto") != "auto":
        raise refuse(f"image detail {image['detail']!r}", f"{path}.image_url.detail")
    url = image.get("url")
    url_path = f"{path}.image_url.url"
    if not isinstance(url, str):
        raise malformed("an image_url needs a string 'url'", url_path)
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    if not url.startswith("data:"):
        raise refuse("an image URL that is neither http(s) nor a data: URL", url_path)
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64":
        raise refuse("a data: URL that is not base64", url_path)
    if media_type not in IMAGE_MEDIA_TYPES:
        raise refuse(
            f"an image of type {media_type!r} (Anthropic takes {', '.join(IMAGE_MEDIA_TYPES)})", url_path
        )
    try:
        binascii.a2b_base64(data, strict_mode=True)
    except binascii.Error:
        raise malformed("the data: URL's base64 data is not valid", url_path) from None
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _tool_result(message: dict[str, Any], path: str) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str):
        raise malformed("a tool message needs a string 'tool_call_id'", f"{path}.tool_call_id")
    content = message.get("content")
    result: str | list[dict[str, Any]]
    if isinstance(content, str):
        result = content
    else:
        parts = _parts(content, f"{path}.content")
        result = [_text_part(part, f"{path}.content[{index}]") for index, part in enumerate(parts)]
    return {"type": "tool_result", "tool_use_id": tool_call_id, "content": result}


def _assistant_content(message: dict[str, Any], path: str) -> str | list[dict[str, Any]]:
    """Thinking blocks first (Anthropic's order), then the text, then the tool calls. Text alone stays a
    string, as the client wrote it."""
    blocks = _thinking_blocks(message, path)
    content = message.get("content")
    if isinstance(content, str):
        if not blocks and "tool_calls" not in message:
            return content
        if content:  # Anthropic refuses empty text blocks; an empty string carries nothing
            blocks.append({"type": "text", "text": content})
    elif content is not None:
        for index, raw in enumerate(_parts(content, f"{path}.content")):
            blocks.append(_text_part(raw, f"{path}.content[{index}]"))
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise malformed("'tool_calls' must be an array", f"{path}.tool_calls")
        blocks.extend(_tool_use(call, f"{path}.tool_calls[{index}]") for index, call in enumerate(tool_calls))
    return blocks


def _tool_use(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise malformed("each tool call must be an object", path)
    call = present(raw)
    if call.get("type") != "function":
        raise refuse(f"a tool call of type {call.get('type')!r}", f"{path}.type")
    _only_keys(call, {"id", "type", "function"}, path)
    function = call.get("function")
    if not isinstance(function, dict):
        raise malformed("a tool call needs a 'function' object", f"{path}.function")
    function = present(function)
    _only_keys(function, {"name", "arguments"}, f"{path}.function")
    call_id, name, arguments = call.get("id"), function.get("name"), function.get("arguments")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise malformed("a tool call needs a string 'id' and 'function.name'", path)
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise refuse("tool call arguments that are not a JSON object", f"{path}.function.arguments")
    return {"type": "tool_use", "id": call_id, "name": name, "input": parsed}


def _thinking_blocks(message: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """`thinking_blocks` (LiteLLM's field, which this gateway also answers with) carry the signatures
    Anthropic needs; `reasoning_content` is only their text, so it must match them."""
    raw_blocks = message.get("thinking_blocks")
    reasoning = message.get("reasoning_content")
    if raw_blocks is None:
        if reasoning:  # an echoed empty string carries nothing
            raise refuse("'reasoning_content' without signed 'thinking_blocks'", f"{path}.reasoning_content")
        return []
    if not isinstance(raw_blocks, list):
        raise malformed("'thinking_blocks' must be an array", f"{path}.thinking_blocks")
    blocks: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_blocks):
        block_path = f"{path}.thinking_blocks[{index}]"
        block = _part(raw, block_path)
        block.pop("index", None)  # our stream's merge key (see chat_messages_stream)
        kind = block.get("type")
        if kind == "thinking":
            _only_keys(block, {"type", "thinking", "signature"}, block_path)
            if not isinstance(block.get("signature"), str) or not block["signature"]:
                raise refuse("a thinking block without a signature", f"{block_path}.signature")
            if not isinstance(block.get("thinking"), str):
                raise malformed("a thinking block needs a string 'thinking'", f"{block_path}.thinking")
            blocks.append(
                {"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]}
            )
        elif kind == "redacted_thinking":
            _only_keys(block, {"type", "data"}, block_path)
            if not isinstance(block.get("data"), str):
                raise malformed("a redacted_thinking block needs a string 'data'", f"{block_path}.data")
            blocks.append({"type": "redacted_thinking", "data": block["data"]})
        else:
            raise refuse(f"a thinking block of type {kind!r}", f"{block_path}.type")
    text = "".join(block["thinking"] for block in blocks if block["type"] == "thinking")
    if reasoning is not None and reasoning != text:
        raise refuse("'reasoning_content' that differs from its thinking_blocks", f"{path}.reasoning_content")
    return blocks
