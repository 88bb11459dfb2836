"""OpenAI Responses payloads the provider simulator answers with, and their SSE encoding (`RESPONSES`).

Pure functions of the request and the `Behaviour`, like `tests.support.simulator_payloads` (whose
content pieces they share: the same deterministic words answer chat, messages and responses requests),
checked against OpenAI's published Responses schemas by `tests.support.responses_schemas`.

Output comes in Responses' order: a `reasoning` item (when `thinking` is set; one `summary_text`), a
`message` item (one `output_text` part), then a `function_call` item per `tool_use`. Ids are stable:
"resp_sim_N", "rs_sim_N", "msg_sim_N", "fc_sim_N_I" (call ids "call_sim_N_I"). `finish_reason: "length"`
makes the response `incomplete` (reason `max_output_tokens`; the stream ends with `response.incomplete`).
A stream is OpenAI's named events, each with its `sequence_number`; `error_after` writes
`response.failed` (its error `code` is `error_type`, default "server_error") and ends the stream.
Events carry no `x_sent_at` stamp (OpenAI's event objects are validated strictly by the SDK's stream
helper): `RecordedRequest.sent_at` keeps the write times instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from tests.support.simulator_behaviour import Behaviour
from tests.support.simulator_payloads import (
    Dialect,
    Event,
    content_pieces,
    encode_ping,
    error_body,
    json_fragments,
    sse_frame,
    thinking_pieces,
)


def _words(value: Any) -> int:
    """Words of an `input` or `instructions`: a string, or items (messages, tool outputs) holding text."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(item) for item in value)
    if isinstance(value, Mapping):
        return sum(_words(value.get(name)) for name in ("content", "text", "output"))
    return 0


def input_tokens(request: Mapping[str, Any]) -> int:
    """One token per word of `instructions` and `input` (min 1), as the chat side counts messages."""
    return max(_words(request.get("instructions")) + _words(request.get("input")), 1)


def _tool_echo(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, Mapping):
        return {"type": "function", "name": "unknown", "parameters": None, "strict": None}
    return {
        "type": "function",
        "name": str(tool.get("name") or ""),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict", True),
    }


class _Plan:
    """The items of one answer: reasoning summary, text pieces, tool calls, and the response around them."""

    def __init__(self, number: int, behaviour: Behaviour, request: Mapping[str, Any]) -> None:
        self.number = number
        self.request = request
        self.created_at = int(time.time())
        self.thinking = thinking_pieces(behaviour)
        self.text = content_pieces(behaviour)
        self.tools = behaviour.tool_calls
        self.fragments = [json_fragments(call.get("input", {})) for call in self.tools]
        self.incomplete = behaviour.finish_reason == "length"
        self.output_tokens = len(self.thinking) + len(self.text) + sum(map(len, self.fragments))

    @property
    def response_id(self) -> str:
        return f"resp_sim_{self.number}"

    def reasoning_item(self) -> dict[str, Any]:
        summary = [{"type": "summary_text", "text": "".join(self.thinking)}]
        return {"id": f"rs_sim_{self.number}", "type": "reasoning", "summary": summary}

    def message_item(self, status: str, text: str | None) -> dict[str, Any]:
        content = [] if text is None else [text_part(text)]
        return {
            "id": f"msg_sim_{self.number}",
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }

    def call_item(self, index: int, status: str, arguments: str) -> dict[str, Any]:
        return {
            "id": f"fc_sim_{self.number}_{index}",
            "type": "function_call",
            "status": status,
            "arguments": arguments,
            "call_id": f"call_sim_{self.number}_{index}",
            "name": self.tools[index]["name"],
        }

    def final_items(self) -> list[dict[str, Any]]:
        status = "incomplete" if self.incomplete else "completed"
        items: list[dict[str, Any]] = []
        if self.thinking:
            items.append(self.reasoning_item())
        if self.text:
            items.append(self.message_item(status, "".join(self.text)))
        for index, call in enumerate(self.tools):
            items.append(self.call_item(index, status, json.dumps(call.get("input", {}))))
        return items

    def usage(self) -> dict[str, Any]:
        prompt = input_tokens(self.request)
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": len(self.thinking)},
            "total_tokens": prompt + self.output_tokens,
        }

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        *,
        usage: bool = False,
        error: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The Response object, echoing the request's parameters as OpenAI does."""
        request = self.request
        tools = request.get("tools")
        text = request.get("text")
        form = text.get("format") if isinstance(text, Mapping) else None
        out: dict[str, Any] = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "model": str(request.get("model", "sim-model")),
            "output": output,
            "parallel_tool_calls": request.get("parallel_tool_calls", True) is not False,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": request.get("store", True) is not False,
            "temperature": request.get("temperature", 1.0),
            "text": {"format": dict(form) if isinstance(form, Mapping) else {"type": "text"}},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": [_tool_echo(tool) for tool in tools] if isinstance(tools, list) else [],
            "top_p": request.get("top_p", 1.0),
            "truncation": "disabled",
            "metadata": dict(request.get("metadata") or {}),
        }
        if usage:  # not nullable in the schema: left out until the answer is complete
            out["usage"] = self.usage()
        return out


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def response(number: int, behaviour: Behaviour, request: Mapping[str, Any]) -> dict[str, Any]:
    """A non-streaming `response` object, `completed` (or `incomplete` for `finish_reason: "length"`)."""
    plan = _Plan(number, behaviour, request)
    status = "incomplete" if plan.incomplete else "completed"
    return plan.response(status, plan.final_items(), usage=True)


def stream_events(number: int, behaviour: Behaviour, request: Mapping[str, Any]) -> list[Event]:
    """The events of a stream, in OpenAI's order: response.created, response.in_progress, per item its
    added / part / delta / done events, then response.completed (or response.incomplete) with usage."""
    plan = _Plan(number, behaviour, request)
    events: list[Event] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, **fields, "sequence_number": len(events)})

    opened = plan.response("in_progress", [])
    emit("response.created", response=opened)
    emit("response.in_progress", response=opened)
    final = plan.final_items()
    for index, item in enumerate(final):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            empty = {"type": "summary_text", "text": ""}
            emit("response.reasoning_summary_part.added", **where, summary_index=0, part=empty)
            for piece in plan.thinking:
                emit("response.reasoning_summary_text.delta", **where, summary_index=0, delta=piece)
            summary = item["summary"][0]
            emit("response.reasoning_summary_text.done", **where, summary_index=0, text=summary["text"])
            emit("response.reasoning_summary_part.done", **where, summary_index=0, part=summary)
        elif item["type"] == "message":
            emit(
                "response.output_item.added", output_index=index, item=plan.message_item("in_progress", None)
            )
            part = {**where, "content_index": 0}
            emit("response.content_part.added", **part, part=text_part(""))
            for piece in plan.text:
                emit("response.output_text.delta", **part, delta=piece, logprobs=[])
            text = item["content"][0]["text"]
            emit("response.output_text.done", **part, text=text, logprobs=[])
            emit("response.content_part.done", **part, part=text_part(text))
        else:
            call = int(item["id"].rsplit("_", 1)[1])
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for fragment in plan.fragments[call]:
                emit("response.function_call_arguments.delta", **where, delta=fragment)
            emit(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            )
        emit("response.output_item.done", output_index=index, item=item)
    status = "incomplete" if plan.incomplete else "completed"
    emit(f"response.{status}", response=plan.response(status, final, usage=True))
    return events


def failed_event(number: int, behaviour: Behaviour, request: Mapping[str, Any], sequence: int) -> dict:
    """`response.failed` as event `sequence` of request `number`'s stream (what `error_after` writes)."""
    plan = _Plan(number, behaviour, request)
    message = behaviour.error_message or "simulated failure from the provider simulator"
    error = {"code": behaviour.error_type or "server_error", "message": message}
    failed = plan.response("failed", [], error=error)
    return {"type": "response.failed", "response": failed, "sequence_number": sequence}


def encode_event(event: Event, behaviour: Behaviour, sent_at: float) -> bytes:
    """`event: <type>` then the JSON data, as OpenAI writes every Responses event."""
    name = event["type"] if isinstance(event, dict) else None
    return sse_frame(event, behaviour, name)


def encode_malformed(behaviour: Behaviour) -> bytes:
    """A named event whose data is cut-off JSON."""
    eol = "\r\n" if behaviour.crlf else "\n"
    data = '{"type": "response.output_text.delta", "delta": '
    return f"event: response.output_text.delta{eol}data: {data}{eol}{eol}".encode()


def encode_error(behaviour: Behaviour, number: int, request: Mapping[str, Any], written: int) -> bytes:
    """`response.failed` after `written` events (sequence numbers count from 0, so it is `written`)."""
    event = failed_event(number, behaviour, request, written)
    return sse_frame(event, behaviour, "response.failed")


RESPONSES = Dialect(
    completion=response,
    stream=stream_events,
    error_body=error_body,
    encode_event=encode_event,
    encode_ping=encode_ping,
    encode_malformed=encode_malformed,
    encode_error=encode_error,
)
