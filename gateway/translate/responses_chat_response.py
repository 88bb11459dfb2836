"""An OpenAI chat completion as a Responses `Response` object, and the pieces the stream translator shares.

Output comes in Responses' order: a `reasoning` item (the upstream's `reasoning_content`, whole, as one
`summary_text`; no `encrypted_content`: a chat upstream has none), a `message` item (`output_text`, and
OpenAI's `refusal` as a `refusal` part), then one `function_call` item per tool call. Ids are derived, so
they are stable: "resp_" + the chat id, "rs_" / "msg_" + the chat id, "fc_" + the call id. Finish
`length` makes the response `incomplete` (reason `max_output_tokens`), `content_filter` likewise (reason
`content_filter`); the last item is then `incomplete` too. The request's parameters that a Response
must carry (`tools`, `tool_choice`, `temperature`, ...) are echoed from the client's body (`echo`).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import UpstreamProtocolError
from gateway.translate.messages_chat_response import read_completion, reasoning_of

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def echo(body: dict[str, Any]) -> dict[str, Any]:
    """The request's parameters every Response object repeats, read leniently (the request was checked
    before any answer is built), in the order OpenAI writes them."""
    tools = body.get("tools")
    reasoning = body.get("reasoning")
    text = body.get("text")
    form = text.get("format") if isinstance(text, dict) else None
    out: dict[str, Any] = {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": str(body.get("model") or ""),
        "parallel_tool_calls": body.get("parallel_tool_calls", True) is not False,
        "reasoning": (
            {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}
            if isinstance(reasoning, dict)
            else None
        ),
        "temperature": body.get("temperature"),
        "text": {"format": form if isinstance(form, dict) else {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [_tool_echo(tool) for tool in tools if isinstance(tool, dict)]
        if isinstance(tools, list)
        else [],
        "top_p": body.get("top_p"),
        "truncation": "disabled",
    }
    if isinstance(text, dict) and text.get("verbosity") is not None:
        out["text"]["verbosity"] = text["verbosity"]
    for name in ("user", "safety_identifier", "prompt_cache_key"):
        if body.get(name) is not None:
            out[name] = body[name]
    out["metadata"] = body.get("metadata") or {}
    return out


def _tool_echo(tool: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def response_object(
    echoed: dict[str, Any],
    *,
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    incomplete_reason: str | None = None,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Response object; `usage` is already in Responses' shape (`response_usage`), or None."""
    out: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": None if incomplete_reason is None else {"reason": incomplete_reason},
    }
    for name, value in echoed.items():
        if name == "metadata":
            continue
        out[name] = value
        if name == "model":
            out["output"] = output
    if usage is not None:
        out["usage"] = usage
    out["metadata"] = echoed["metadata"]
    return out


def response_usage(usage: Any) -> dict[str, Any] | None:
    """Responses' usage for a chat usage object; DeepSeek's `prompt_cache_hit_tokens` counts as cached."""
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details")
    cached = (
        _count(prompt_details.get("cached_tokens"))
        if isinstance(prompt_details, dict)
        else _count(usage.get("prompt_cache_hit_tokens"))
    )
    completion_details = usage.get("completion_tokens_details")
    reasoning = (
        _count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
    )
    total = usage.get("total_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": _count(total) if total is not None else prompt + completion,
    }


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": parts}


def function_call_item(call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": "fc_" + call_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def response_body(content: bytes, echoed: dict[str, Any], created_at: int) -> bytes:
    """The Response object for a chat completion; `echoed` holds the client's parameters (`echo`)."""
    data = read_completion(content)
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        raise UpstreamProtocolError("the upstream's chat completion has no choices[0].message")
    message: dict[str, Any] = choice["message"]
    chat_id = str(data.get("id") or "")
    finish = choice.get("finish_reason")
    incomplete = INCOMPLETE.get(finish) if isinstance(finish, str) else None
    output: list[dict[str, Any]] = []
    reasoning = reasoning_of(message)
    if reasoning:
        output.append(reasoning_item("rs_" + chat_id, reasoning))
    parts: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        parts.append(text_part(text))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append({"type": "refusal", "refusal": refusal})
    if parts:
        output.append(message_item("msg_" + chat_id, parts, "completed"))
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise UpstreamProtocolError("the upstream's tool_calls is not a list")
    for position, call in enumerate(calls):
        output.append(_function_call(call, position))
    if incomplete is not None and output and "status" in output[-1]:
        output[-1]["status"] = "incomplete"
    return orjson.dumps(
        response_object(
            echoed,
            response_id="resp_" + chat_id,
            created_at=created_at,
            status="completed" if incomplete is None else "incomplete",
            output=output,
            usage=response_usage(data.get("usage")),
            incomplete_reason=incomplete,
        )
    )


def _function_call(call: Any, position: int) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise UpstreamProtocolError(f"the upstream's tool_calls[{position}] has no function name")
    arguments = function.get("arguments")
    if not arguments:  # none or "": a call without arguments, as JSON a client can parse
        arguments = "{}"
    elif not isinstance(arguments, str):  # some servers send the object itself
        arguments = orjson.dumps(arguments).decode()
    call_id = call.get("id")
    call_id = call_id if isinstance(call_id, str) and call_id else f"call_{position}"
    return function_call_item(call_id, function["name"], arguments, "completed")
