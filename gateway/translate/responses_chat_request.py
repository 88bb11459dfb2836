"""An OpenAI Responses request as an OpenAI chat request: exact, or refused with a 400 naming the field.

The gateway is stateless: `store: true`, `previous_response_id`, `conversation`, `background`, `prompt`
and `item_reference` inputs need stored objects and are refused (code `unsupported_field`, `param` the
path such as `input[3].content[0]`), and so is anything else without an exact chat form: built-in tools,
`input_file`, `truncation: auto`, a non-default `service_tier`, unknown fields. Accepted on purpose:

- `store` absent: Responses defaults it to true, but nothing is stored here and no later request can
  refer to this one, so an absent `store` is read as false;
- `include: ["reasoning.encrypted_content"]` (Codex sends it with `store: false`): reasoning items come
  back with their summary text and no `encrypted_content`, since a chat upstream has none;
- `reasoning.summary` (any value): the upstream's whole reasoning text becomes the summary;
- `stream_options.include_obfuscation: false` (no obfuscation is ever added).

Mappings that are not one to one, chosen here:

- `instructions` becomes a leading `system` message; `input` items: `responses_chat_input.py`;
- `max_output_tokens` goes as `max_tokens` (DeepSeek and 01.AI read it, not `max_completion_tokens`);
- a function tool without `strict` is sent without it (the upstream's default, not Responses' true).
"""

from __future__ import annotations

from typing import Any

from gateway.translate.responses_chat_input import input_messages, invalid, refuse, stateless, string

# Top-level fields this pair reads; any other field is refused.
TOP_LEVEL = frozenset(
    (
        "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "user",
        "safety_identifier", "prompt_cache_key", "metadata", "stream", "stream_options", "store", "include",
        "tools", "tool_choice", "parallel_tool_calls", "text", "reasoning", "service_tier", "truncation",
        "background", "previous_response_id", "conversation", "prompt",
    )
)  # fmt: skip
# Body fields meant for the gateway itself; they never reach a provider.
GATEWAY_FIELDS = frozenset(("x_use_asgi_streaming",))
# Fields that need state the gateway does not keep: refused whenever they hold a value.
STATEFUL = ("previous_response_id", "conversation", "prompt")
SAME_NAME = ("temperature", "top_p", "user", "safety_identifier", "prompt_cache_key", "metadata",
             "parallel_tool_calls")  # fmt: skip
INCLUDABLE = frozenset(("reasoning.encrypted_content",))
SERVICE_TIERS = frozenset(("auto", "default"))
TOOL_CHOICES = frozenset(("auto", "none", "required"))
EFFORTS = frozenset(("none", "minimal", "low", "medium", "high", "xhigh", "max"))
SUMMARIES = frozenset(("auto", "concise", "detailed"))
TOOL_FIELDS = frozenset(("type", "name", "description", "parameters", "strict"))


def chat_request(body: dict[str, Any], upstream_model: str, *, stream_usage: bool) -> dict[str, Any]:
    """The chat request for the Responses request `body` (not mutated). `stream_usage`: ask for the usage
    chunk at the end of a stream (the Response's usage is built from it)."""
    _check_top_level(body)
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise refuse("instructions", "instructions that are not a string")
        messages.append({"role": "system", "content": instructions})
    messages.extend(input_messages(body.get("input")))
    out: dict[str, Any] = {"model": upstream_model, "messages": messages}
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    for name in SAME_NAME:
        if body.get(name) is not None:
            out[name] = body[name]
    reasoning = body.get("reasoning")
    if reasoning is not None:
        effort = _reasoning_effort(reasoning)
        if effort is not None:
            out["reasoning_effort"] = effort
    text = body.get("text")
    if text is not None:
        out.update(_text(text))
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid("tools", "must be a list of tools")
        if tools:
            out["tools"] = [_tool(tool, f"tools[{position}]") for position, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = _tool_choice(choice)
    if body.get("stream") is not None:
        out["stream"] = body["stream"]
        if body["stream"] and stream_usage:
            out["stream_options"] = {"include_usage": True}
    return out


def _check_top_level(body: dict[str, Any]) -> None:
    for name in body:
        if name not in TOP_LEVEL and name not in GATEWAY_FIELDS:
            raise refuse(name, f"the field {name!r}")
    for name in STATEFUL:
        if body.get(name) is not None:
            raise stateless(name)
    if body.get("store"):
        raise stateless("store")
    if body.get("background"):
        raise refuse("background", "a background response (the gateway stores none)")
    if body.get("truncation") not in (None, "disabled"):
        raise refuse("truncation", f"truncation {body['truncation']!r}")
    if body.get("service_tier") not in (None, *SERVICE_TIERS):
        raise refuse("service_tier", f"the service tier {body['service_tier']!r}")
    include = body.get("include")
    if include is not None:
        if not isinstance(include, list):
            raise invalid("include", "must be a list")
        for position, value in enumerate(include):
            if value not in INCLUDABLE:
                raise refuse(f"include[{position}]", f"including {value!r}")
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict):
            raise invalid("stream_options", "must be an object")
        for name, value in options.items():
            if name != "include_obfuscation" or value is not False:
                raise refuse(f"stream_options.{name}", f"the stream option {name}={value!r}")


def _tool(tool: Any, path: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise invalid(path, "must be an object")
    kind = tool.get("type")
    if kind != "function":
        raise refuse(f"{path}.type", f"the tool type {kind!r}")
    for name, value in tool.items():
        if name not in TOOL_FIELDS and value is not None:
            raise refuse(f"{path}.{name}", f"the tool field {name!r}")
    function: dict[str, Any] = {"name": string(tool, "name", path)}
    if tool.get("description") is not None:
        function["description"] = tool["description"]
    if tool.get("parameters") is not None:
        function["parameters"] = tool["parameters"]
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> str | dict[str, Any]:
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise invalid("tool_choice", f"unknown tool choice {choice!r}")
        return choice
    if not isinstance(choice, dict):
        raise invalid("tool_choice", "must be a string or an object")
    kind = choice.get("type")
    if kind != "function":
        raise refuse("tool_choice.type", f"the tool choice {kind!r}")
    for name in choice:
        if name not in ("type", "name"):
            raise refuse(f"tool_choice.{name}", f"the field {name!r}")
    return {"type": "function", "function": {"name": string(choice, "name", "tool_choice")}}


def _text(text: Any) -> dict[str, Any]:
    if not isinstance(text, dict):
        raise invalid("text", "must be an object")
    out: dict[str, Any] = {}
    for name in text:
        if name not in ("format", "verbosity"):
            raise refuse(f"text.{name}", f"the field {name!r}")
    form = text.get("format")
    if form is not None:
        response_format = _response_format(form)
        if response_format is not None:
            out["response_format"] = response_format
    if text.get("verbosity") is not None:
        out["verbosity"] = text["verbosity"]
    return out


def _response_format(form: Any) -> dict[str, Any] | None:
    if not isinstance(form, dict):
        raise invalid("text.format", "must be an object")
    kind = str(form.get("type"))
    known = {"text": ("type",), "json_object": ("type",),
             "json_schema": ("type", "name", "description", "schema", "strict")}.get(kind)  # fmt: skip
    if known is None:
        raise refuse("text.format.type", f"the text format {kind!r}")
    for name in form:
        if name not in known:
            raise refuse(f"text.format.{name}", f"the field {name!r} of a {kind!r} format")
    if kind == "text":
        return None  # the default
    if kind == "json_object":
        return {"type": "json_object"}
    schema = form.get("schema")
    if not isinstance(schema, dict):
        raise invalid("text.format.schema", "must be an object")
    json_schema: dict[str, Any] = {"name": string(form, "name", "text.format")}
    if form.get("description") is not None:
        json_schema["description"] = form["description"]
    json_schema["schema"] = schema
    if form.get("strict") is not None:
        json_schema["strict"] = form["strict"]
    return {"type": "json_schema", "json_schema": json_schema}


def _reasoning_effort(reasoning: Any) -> str | None:
    if not isinstance(reasoning, dict):
        raise invalid("reasoning", "must be an object")
    for name, value in reasoning.items():
        if name not in ("effort", "summary") and value is not None:
            raise refuse(f"reasoning.{name}", f"the reasoning field {name!r}")
    summary = reasoning.get("summary")
    if summary is not None and summary not in SUMMARIES:
        raise invalid("reasoning.summary", f"unknown summary {summary!r}")
    effort = reasoning.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise refuse("reasoning.effort", f"the reasoning effort {effort!r}")
    return effort if isinstance(effort, str) else None
