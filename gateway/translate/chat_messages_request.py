"""An OpenAI chat request -> an Anthropic Messages request body (the request half of `chat_messages`).

Each chat field is mapped exactly or refused (`InvalidRequest`, code `unsupported_field`, its name as
`param`); a field this module does not know is refused too, so a new OpenAI feature is never silently lost.
Values that are the default on both sides (`n: 1`, `presence_penalty: 0`, `response_format: {type: text}`,
...) are accepted and not sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.translate.chat_messages_content import convert_messages, malformed, present, refuse
from gateway.translate.openai_openai import GATEWAY_FIELDS

# reasoning_effort -> thinking.budget_tokens; "none" asks for no thinking. Anthropic's minimum budget is
# 1024, so "minimal" takes it; the others are the usual low / medium / high budgets of chat-to-Claude
# gateways, which must stay below max_tokens.
THINKING_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}

# Fields accepted only with the value that means "nothing" (on both APIs); another value is refused.
_NEUTRAL: Mapping[str, tuple[Any, ...]] = {
    "n": (1,),
    "logprobs": (False,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "response_format": ({"type": "text"},),
    "store": (False,),
    "service_tier": ("auto",),
    "modalities": (["text"],),
    "logit_bias": ({},),
}

# Fields this module maps itself (see messages_request).
_MAPPED = frozenset(
    {
        "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
        "stop", "user", "safety_identifier", "stream", "stream_options", "tools", "tool_choice",
        "parallel_tool_calls", "reasoning_effort",
    }
)  # fmt: skip


def messages_request(body: dict[str, Any], upstream_model: str, default_max_tokens: int) -> dict[str, Any]:
    """The Messages request for chat `body` (never mutated). Raises `InvalidRequest`."""
    fields = {key: value for key, value in body.items() if value is not None and key not in GATEWAY_FIELDS}
    for key, value in fields.items():
        if key in _NEUTRAL:
            if value not in _NEUTRAL[key]:
                raise refuse(f"'{key}' = {value!r}", key)
        elif key not in _MAPPED:
            raise refuse(f"the field '{key}'", key)
    system, turns = convert_messages(fields.get("messages"))
    out: dict[str, Any] = {"model": upstream_model}
    if system is not None:
        out["system"] = system
    out["messages"] = turns
    out["max_tokens"] = _max_tokens(fields, default_max_tokens)
    _sampling(fields, out)
    user = _user(fields)
    if user is not None:
        out["metadata"] = {"user_id": user}
    _tools(fields, out)
    _thinking(fields, out)
    if "stream" in fields:
        if not isinstance(fields["stream"], bool):
            raise malformed("'stream' must be a boolean", "stream")
        out["stream"] = fields["stream"]
    _stream_options(fields)
    return out


def _max_tokens(fields: dict[str, Any], default: int) -> int:
    value = fields.get("max_completion_tokens", fields.get("max_tokens"))
    if "max_completion_tokens" in fields and "max_tokens" in fields and fields["max_tokens"] != value:
        raise refuse("'max_tokens' differing from 'max_completion_tokens'", "max_tokens")
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        name = "max_completion_tokens" if "max_completion_tokens" in fields else "max_tokens"
        raise malformed(f"'{name}' must be a positive integer", name)
    return value


def _sampling(fields: dict[str, Any], out: dict[str, Any]) -> None:
    stop = fields.get("stop")
    if stop is not None:
        sequences = [stop] if isinstance(stop, str) else stop
        if not isinstance(sequences, list) or not all(isinstance(item, str) for item in sequences):
            raise malformed("'stop' must be a string or an array of strings", "stop")
        if sequences:
            out["stop_sequences"] = sequences
    for name in ("temperature", "top_p", "top_k"):
        value = fields.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise malformed(f"'{name}' must be a number", name)
        if name == "temperature" and value > 1:
            raise refuse(f"temperature {value} (Anthropic's range is 0 to 1)", name)
        out[name] = value


def _user(fields: dict[str, Any]) -> str | None:
    user, safety = fields.get("user"), fields.get("safety_identifier")
    for name, value in (("user", user), ("safety_identifier", safety)):
        if value is not None and not isinstance(value, str):
            raise malformed(f"'{name}' must be a string", name)
    if user is not None and safety is not None and user != safety:
        raise refuse(
            "both 'user' and a different 'safety_identifier' (one metadata.user_id)", "safety_identifier"
        )
    return user if user is not None else safety


def _tools(fields: dict[str, Any], out: dict[str, Any]) -> None:
    tools = fields.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise malformed("'tools' must be an array", "tools")
        if tools:
            out["tools"] = [_tool(tool, f"tools[{index}]") for index, tool in enumerate(tools)]
    choice = _tool_choice(fields.get("tool_choice"))
    parallel = fields.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise malformed("'parallel_tool_calls' must be a boolean", "parallel_tool_calls")
    # No tools, or tool_choice none: no tool call can happen, so there is nothing to make sequential.
    if parallel is False and "tools" in out and (choice is None or choice["type"] != "none"):
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None:
        out["tool_choice"] = choice


def _tool(raw: Any, path: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise malformed("each tool must be an object", path)
    tool = present(raw)
    if tool.get("type") != "function":
        raise refuse(f"a tool of type {tool.get('type')!r}", f"{path}.type")
    for key in tool:
        if key not in ("type", "function"):
            raise refuse(f"'{key}' on a tool", f"{path}.{key}")
    function = tool.get("function")
    if not isinstance(function, dict):
        raise malformed("a function tool needs a 'function' object", f"{path}.function")
    function = present(function)
    for key in function:
        if key not in ("name", "description", "parameters", "strict"):
            raise refuse(f"'{key}' on a function", f"{path}.function.{key}")
    if function.get("strict", False) is not False:
        raise refuse("strict function schemas", f"{path}.function.strict")
    name = function.get("name")
    if not isinstance(name, str):
        raise malformed("a function needs a string 'name'", f"{path}.function.name")
    out: dict[str, Any] = {"name": name}
    if "description" in function:
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters", {"type": "object", "properties": {}})
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    named = {"auto": "auto", "required": "any", "none": "none"}
    if isinstance(choice, str):
        if choice not in named:
            raise refuse(f"tool_choice {choice!r}", "tool_choice")
        return {"type": named[choice]}
    if isinstance(choice, dict) and choice.get("type") == "function" and set(choice) == {"type", "function"}:
        function = choice["function"]
        if isinstance(function, dict) and set(function) == {"name"} and isinstance(function["name"], str):
            return {"type": "tool", "name": function["name"]}
    raise refuse(
        "this tool_choice (only auto, required, none and {type: function, function: {name}})", "tool_choice"
    )


def _thinking(fields: dict[str, Any], out: dict[str, Any]) -> None:
    effort = fields.get("reasoning_effort")
    if effort is None or effort == "none":
        return
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise refuse(f"reasoning_effort {effort!r}", "reasoning_effort")
    if budget >= out["max_tokens"]:
        name = "max_completion_tokens" if "max_completion_tokens" in fields else "max_tokens"
        raise refuse(
            f"reasoning_effort {effort!r} (a thinking budget of {budget} tokens) with {name} "
            f"{out['max_tokens']}: Anthropic needs max_tokens above the budget",
            name,
        )
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _stream_options(fields: dict[str, Any]) -> None:
    """Read by the stream translator alone (Anthropic always reports usage); checked here so that an option
    it cannot honour is refused."""
    options = fields.get("stream_options")
    if options is None:
        return
    if not isinstance(options, dict):
        raise malformed("'stream_options' must be an object", "stream_options")
    for key, value in present(options).items():
        if key == "include_usage" and isinstance(value, bool):
            continue
        if key == "include_obfuscation" and value is False:
            continue
        raise refuse(f"stream_options.{key} = {value!r}", f"stream_options.{key}")
