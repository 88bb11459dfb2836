"""An OpenAI chat completion as an Anthropic `Message`, and the pieces the stream translator shares.

Content comes in Anthropic's order: the reasoning (`reasoning_content`, DeepSeek-style) as a `thinking`
block with an empty `signature` (a chat upstream has none; the SDK's type requires the string), then the
text, then one `tool_use` block per tool call. Finish reasons: stop -> end_turn (chat does not say which
stop sequence ended the text, so `stop_sequence` stays null), length -> max_tokens, tool_calls ->
tool_use, content_filter -> refusal; a turn that called tools is `tool_use` whatever the upstream said
(Ollama says "stop"); any other reason is end_turn.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import UpstreamProtocolError

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish_reason: Any, *, called_tools: bool) -> str:
    reason = STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"
    return "tool_use" if called_tools and reason == "end_turn" else reason


def message_usage(usage: Any) -> dict[str, int]:
    """Anthropic's usage for a chat usage object: cached prompt tokens are not counted in input_tokens."""
    if not isinstance(usage, dict):
        return {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                "output_tokens": 0}  # fmt: skip
    prompt = _count(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return {
        "input_tokens": max(prompt - cached, 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": _count(usage.get("completion_tokens")),
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def reasoning_of(holder: dict[str, Any]) -> str | None:
    """The reasoning text of a chat message or delta: `reasoning_content` (DeepSeek, vLLM's older
    parsers), else `reasoning` (vLLM's newer ones, OpenRouter)."""
    for name in ("reasoning_content", "reasoning"):
        value = holder.get(name)
        if isinstance(value, str):
            return value
    return None


def read_completion(content: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(f"the upstream's chat completion is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UpstreamProtocolError("the upstream's chat completion is not a JSON object")
    return data


def message_body(content: bytes, model: str) -> bytes:
    """The Anthropic `Message` for a chat completion; `model` is the name the client asked for."""
    data = read_completion(content)
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        raise UpstreamProtocolError("the upstream's chat completion has no choices[0].message")
    message: dict[str, Any] = choice["message"]
    blocks: list[dict[str, Any]] = []
    reasoning = reasoning_of(message)
    if reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, str) and text:
        blocks.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        blocks.append({"type": "text", "text": refusal})
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise UpstreamProtocolError("the upstream's tool_calls is not a list")
    for position, call in enumerate(calls):
        blocks.append(_tool_use(call, position))
    reason = stop_reason(choice.get("finish_reason"), called_tools=bool(calls))
    if isinstance(refusal, str) and refusal:
        reason = "refusal"
    return orjson.dumps(
        {
            "id": "msg_" + str(data.get("id") or ""),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": blocks,
            "stop_reason": reason,
            "stop_sequence": None,
            "usage": message_usage(data.get("usage")),
        }
    )


def _tool_use(call: Any, position: int) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise UpstreamProtocolError(f"the upstream's tool_calls[{position}] has no function name")
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError(
            f"the upstream's tool_calls[{position}].function.arguments is not JSON: {arguments[:200]!r}"
        ) from None
    if not isinstance(parsed, dict):
        raise UpstreamProtocolError(
            f"the upstream's tool_calls[{position}].function.arguments is not an object"
        )
    call_id = call.get("id")
    return {
        "type": "tool_use",
        "id": call_id if isinstance(call_id, str) and call_id else f"call_{position}",
        "name": function["name"],
        "input": parsed,
    }
