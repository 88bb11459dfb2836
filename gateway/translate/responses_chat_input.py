"""A Responses request's `input` items as chat messages (the history of the conversation).

An assistant `message`, the `function_call`s after it and a `reasoning` item before it make one chat
assistant message (content, `tool_calls`, `reasoning_content`: the summary texts, else the reasoning
texts, joined by a blank line). A reasoning item with no text (OpenAI's encrypted-only items) is dropped:
only OpenAI can read it; one not followed by the assistant's message or call is refused. `system` and
`developer` messages become `system` messages (DeepSeek and 01.AI know no `developer` role). Refusals
name the path, e.g. `input[3].content[0].type`.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequest

IMAGE_DETAILS = frozenset(("auto", "low", "high"))
ITEM_FIELDS: dict[str, frozenset[str]] = {
    "message": frozenset(("type", "role", "content", "id", "status")),
    "function_call": frozenset(("type", "call_id", "name", "arguments", "id", "status")),
    "function_call_output": frozenset(("type", "call_id", "output", "id", "status")),
    "reasoning": frozenset(("type", "id", "summary", "content", "encrypted_content", "status")),
}
PART_FIELDS: dict[str, frozenset[str]] = {
    "input_text": frozenset(("type", "text")),
    "input_image": frozenset(("type", "image_url", "file_id", "detail")),
    "output_text": frozenset(("type", "text", "annotations", "logprobs")),
    "refusal": frozenset(("type", "refusal")),
}
# Which content parts each role may carry over to chat.
ROLE_PARTS: dict[str, frozenset[str]] = {
    "user": frozenset(("input_text", "input_image")),
    "system": frozenset(("input_text",)),
    "developer": frozenset(("input_text",)),
    "assistant": frozenset(("output_text", "input_text", "refusal")),
}


def refuse(param: str, what: str) -> InvalidRequest:
    return InvalidRequest(
        f"{param}: {what} cannot be sent to this model's upstream (OpenAI chat)",
        param=param,
        code="unsupported_field",
    )


def stateless(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"{param}: the gateway is stateless; it stores no responses or conversations "
        "(send the whole conversation in `input`, with `store: false`)",
        param=param,
        code="unsupported_field",
    )


def invalid(param: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {what}", param=param, code="invalid_value")


def input_messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise invalid("input", "must be a string or a non-empty list of input items")
    return _History().messages(value)


class _History:
    """Input items into chat messages; the assistant message being built gathers what belongs to it."""

    __slots__ = ("_assistant", "_out", "_reasoning_at")

    def __init__(self) -> None:
        self._out: list[dict[str, Any]] = []
        self._assistant: dict[str, Any] | None = None
        self._reasoning_at: str | None = None  # the path of a reasoning item still waiting for its turn

    def messages(self, items: list[Any]) -> list[dict[str, Any]]:
        for position, item in enumerate(items):
            self._item(item, f"input[{position}]")
        self._close()
        return self._out

    def _item(self, item: Any, path: str) -> None:
        if not isinstance(item, dict):
            raise invalid(path, "must be an object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "item_reference":
            raise stateless(f"{path}.type")
        if kind not in ITEM_FIELDS:
            raise refuse(f"{path}.type", f"an input item of type {kind!r}")
        for name, value in item.items():
            if name not in ITEM_FIELDS[kind] and value is not None:
                raise refuse(f"{path}.{name}", f"the field {name!r} of a {kind!r} item")
        if kind == "reasoning":
            self._reasoning(item, path)
        elif kind == "function_call":
            self._turn(path, new=False).setdefault("tool_calls", []).append(_tool_call(item, path))
        elif kind == "message" and item.get("role") == "assistant":
            turn = self._turn(path, new=True)
            content, refusal = _assistant_content(item.get("content"), f"{path}.content")
            turn["content"] = content
            if refusal is not None:
                turn["refusal"] = refusal
        else:
            self._close()
            self._out.append(
                _tool_output(item, path) if kind == "function_call_output" else _message(item, path)
            )

    def _turn(self, path: str, *, new: bool) -> dict[str, Any]:
        """The assistant message this item belongs to: a message after calls or text starts another."""
        turn = self._assistant
        if turn is not None and new and (turn["content"] is not None or "tool_calls" in turn):
            self._close()
            turn = None
        if turn is None:
            turn = self._assistant = {"role": "assistant", "content": None}
        self._reasoning_at = None
        return turn

    def _reasoning(self, item: dict[str, Any], path: str) -> None:
        text = _reasoning_text(item, path)
        if not text:
            return
        turn = self._assistant
        if turn is not None and (turn["content"] is not None or "tool_calls" in turn):
            self._close()
            turn = None
        if turn is None:
            turn = self._assistant = {"role": "assistant", "content": None}
        known = turn.get("reasoning_content")
        turn["reasoning_content"] = text if known is None else f"{known}\n\n{text}"
        self._reasoning_at = path

    def _close(self) -> None:
        if self._reasoning_at is not None:
            raise refuse(
                self._reasoning_at, "a reasoning item not followed by the assistant's message or call"
            )
        if self._assistant is not None:
            self._out.append(self._assistant)
            self._assistant = None


def _message(item: dict[str, Any], path: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ROLE_PARTS:
        raise invalid(f"{path}.role", f"unknown role {role!r}")
    content = item.get("content")
    path = f"{path}.content"
    chat_role = "user" if role == "user" else "system"
    if isinstance(content, str):
        return {"role": chat_role, "content": content}
    parts = _parts(content, role, path)
    return {"role": chat_role, "content": _parts_content(parts)}


def _parts(content: Any, role: str, path: str) -> list[dict[str, Any]]:
    if not isinstance(content, list) or not content:
        raise invalid(path, "must be a string or a non-empty list of content parts")
    out: list[dict[str, Any]] = []
    for position, part in enumerate(content):
        where = f"{path}[{position}]"
        if not isinstance(part, dict):
            raise invalid(where, "must be a content part object")
        kind = part.get("type")
        if kind not in ROLE_PARTS[role]:
            raise refuse(f"{where}.type", f"a {kind!r} part in a {role} message")
        for name, value in part.items():
            if name not in PART_FIELDS[kind] and value is not None:
                raise refuse(f"{where}.{name}", f"the field {name!r} of a {kind!r} part")
        if kind == "input_image":
            out.append(_image(part, where))
        elif kind == "refusal":
            out.append({"type": "refusal", "refusal": string(part, "refusal", where)})
        else:
            if part.get("annotations"):
                raise refuse(f"{where}.annotations", "annotations")
            out.append({"type": "text", "text": string(part, "text", where)})
    return out


def _assistant_content(content: Any, path: str) -> tuple[str | list[dict[str, Any]], str | None]:
    """An assistant message's text (a string for one part) and its refusal text, if any."""
    if isinstance(content, str):
        return content, None
    parts = _parts(content, "assistant", path)
    texts = [part for part in parts if part["type"] == "text"]
    refusals = [part["refusal"] for part in parts if part["type"] == "refusal"]
    return (_parts_content(texts) if texts else ""), ("".join(refusals) if refusals else None)


def _image(part: dict[str, Any], path: str) -> dict[str, Any]:
    if part.get("file_id") is not None:
        raise refuse(f"{path}.file_id", "an image by file id (the upstream has no files)")
    url = part.get("image_url")
    if not isinstance(url, str):
        raise invalid(f"{path}.image_url", "must be a string")
    image: dict[str, Any] = {"url": url}
    detail = part.get("detail")
    if detail is not None:
        if detail not in IMAGE_DETAILS:
            raise refuse(f"{path}.detail", f"the image detail {detail!r}")
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def _tool_call(item: dict[str, Any], path: str) -> dict[str, Any]:
    arguments = string(item, "arguments", path)
    return {
        "id": string(item, "call_id", path),
        "type": "function",
        "function": {"name": string(item, "name", path), "arguments": arguments},
    }


def _tool_output(item: dict[str, Any], path: str) -> dict[str, Any]:
    call_id = string(item, "call_id", path)
    output = item.get("output")
    content: str | list[dict[str, Any]]
    if isinstance(output, str):
        content = output
    elif isinstance(output, list) and output:
        # A tool message carries text only: an image or file output has no chat form.
        content = _parts_content(_parts(output, "system", f"{path}.output"))
    else:
        raise invalid(f"{path}.output", "must be a string or a non-empty list of content parts")
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _reasoning_text(item: dict[str, Any], path: str) -> str:
    """The summary texts (else the reasoning texts) of a reasoning item, joined by a blank line."""
    texts: list[str] = []
    for field, kind in (("summary", "summary_text"), ("content", "reasoning_text")):
        parts = item.get(field)
        if parts is None:
            continue
        if not isinstance(parts, list):
            raise invalid(f"{path}.{field}", "must be a list")
        for position, part in enumerate(parts):
            where = f"{path}.{field}[{position}]"
            if not isinstance(part, dict) or part.get("type") != kind:
                raise refuse(f"{where}.type", f"a reasoning part that is not {kind!r}")
            text = string(part, "text", where)
            if text:
                texts.append(text)
        if texts:
            break
    return "\n\n".join(texts)


def _parts_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """One text part as a plain string (what every chat server reads), anything else as parts."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    return parts


def string(holder: dict[str, Any], name: str, path: str) -> str:
    value = holder.get(name)
    if not isinstance(value, str):
        raise invalid(f"{path}.{name}", "must be a string")
    return value
