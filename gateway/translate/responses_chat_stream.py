"""An OpenAI chat stream as a Responses event stream, event by event.

The first chunk opens the response (`response.created`, `response.in_progress`). Each kind of delta goes
into an output item of its own, as `responses_chat_response` builds them: `reasoning_content` into a
`reasoning` item (one summary part), `content` and `refusal` into a `message` item (an `output_text` or
`refusal` part each), each `tool_calls[i]` (by its `index`) into a `function_call` item. One item is open
at a time; a new kind of delta, or another tool call, closes it (`.done` events, then
`response.output_item.done`). Like the Messages pair, a fragment for a call whose item is already closed
is refused as a protocol error, and so is a call whose first fragment has no name.

The usage chunk comes after the finish_reason chunk, so the last item's closing events and
`response.completed` (or `response.incomplete`) wait for `[DONE]` or the end of the body; a stream that
ends without a finish_reason was cut off. Every event carries its `sequence_number` (0, 1, 2, ...).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError, RateLimited, UpstreamProtocolError
from gateway.streaming.sse import named_frame
from gateway.translate.chat_stream_reader import ChatStreamReader
from gateway.translate.messages_chat_response import reasoning_of
from gateway.translate.responses_chat_response import (
    INCOMPLETE,
    function_call_item,
    message_item,
    reasoning_item,
    response_object,
    response_usage,
    text_part,
)

# The delta fields of a message's parts: chat field -> (part type, the part's text field, event prefix).
PARTS = {
    "content": ("output_text", "text", "response.output_text"),
    "refusal": ("refusal", "refusal", "response.refusal"),
}


class ResponsesStreamFromChat(ChatStreamReader):
    """The `StreamEvents` of one Responses stream over a chat upstream. `echoed`: the client's
    parameters (`responses_chat_response.echo`); `created_at`: the attempt's clock reading."""

    __slots__ = (
        "_chat_id",
        "_created_at",
        "_echoed",
        "_item",
        "_output",
        "_part",
        "_parts",
        "_sequence",
        "_text",
        "_tool",
        "_tools",
        "_used_ids",
    )

    def __init__(self, echoed: dict[str, Any], created_at: int) -> None:
        super().__init__()  # `_started`: response.created went out
        self._echoed = echoed
        self._created_at = created_at
        self._chat_id = ""
        self._sequence = 0
        self._output: list[dict[str, Any]] = []  # the finished items
        self._item: dict[str, Any] | None = None  # the open item, as output_item.added sent it
        self._parts: list[dict[str, Any]] = []  # the open message's finished parts
        self._part: str | None = None  # the chat field of the open message part: "content", "refusal"
        self._text: list[str] = []  # the open part's (or reasoning summary's, or call's) text so far
        self._tool: int | None = None  # the chat index of the open function_call item
        self._tools: set[int] = set()  # chat tool-call indexes seen
        self._used_ids: set[str] = set()

    def end(self) -> bytes:
        if self._closed:
            return b""
        if self._finish_reason is None:
            raise UpstreamProtocolError("the upstream's stream ended before its finish_reason (cut off)")
        self._closed = True
        incomplete = INCOMPLETE.get(self._finish_reason)
        out: list[bytes] = []
        self._close_item(out, "completed" if incomplete is None else "incomplete")
        status = "completed" if incomplete is None else "incomplete"
        response = self._response(status, response_usage(self._usage), incomplete_reason=incomplete)
        self._event(f"response.{status}", {"response": response}, out)
        return b"".join(out)

    def error(self, exc: GatewayError) -> bytes:
        """`response.failed` with the items finished so far (an open one is left out)."""
        out: list[bytes] = []
        if not self._started:
            self._start(self._chat_id, out)
        code = (
            "rate_limit_exceeded"
            if isinstance(exc, RateLimited) or exc.status_code == 429
            else "server_error"
        )
        response = self._response("failed", None, error={"code": code, "message": exc.message})
        self._event("response.failed", {"response": response}, out)
        return b"".join(out)

    def _response(self, status: str, usage: dict[str, Any] | None, **details: Any) -> dict[str, Any]:
        return response_object(
            self._echoed,
            response_id="resp_" + self._chat_id,
            created_at=self._created_at,
            status=status,
            output=list(self._output),
            usage=usage,
            **details,
        )

    def _event(self, name: str, fields: dict[str, Any], out: list[bytes]) -> None:
        payload = {"type": name, **fields, "sequence_number": self._sequence}
        self._sequence += 1
        out.append(named_frame(name, orjson.dumps(payload)))

    def _begin(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        self._start(str(chunk.get("id") or ""), out)

    def _start(self, chat_id: str, out: list[bytes]) -> None:
        self._started = True
        self._chat_id = chat_id
        response = self._response("in_progress", None)
        self._event("response.created", {"response": response}, out)
        self._event("response.in_progress", {"response": response}, out)

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        reasoning = reasoning_of(delta)
        if reasoning:
            self._reasoning_delta(reasoning, out)
        for field in PARTS:
            text = delta.get(field)
            if isinstance(text, str) and text:
                self._message_delta(field, text, out)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                self._tool_delta(call, out)

    def _reasoning_delta(self, text: str, out: list[bytes]) -> None:
        item = self._item
        if item is None or item["type"] != "reasoning":
            self._close_item(out, "completed")
            item = self._open_item({"id": self._item_id("rs_"), "type": "reasoning", "summary": []}, out)
            self._event(
                "response.reasoning_summary_part.added",
                {**self._where(), "summary_index": 0, "part": {"type": "summary_text", "text": ""}},
                out,
            )
        self._text.append(text)
        self._event(
            "response.reasoning_summary_text.delta", {**self._where(), "summary_index": 0, "delta": text}, out
        )

    def _message_delta(self, field: str, text: str, out: list[bytes]) -> None:
        item = self._item
        if item is None or item["type"] != "message":
            self._close_item(out, "completed")
            self._open_item(message_item(self._item_id("msg_"), [], "in_progress"), out)
        if self._part != field:
            self._close_part(out)
            self._part = field
            kind, name, _ = PARTS[field]
            empty = text_part("") if kind == "output_text" else {"type": kind, name: ""}
            self._event(
                "response.content_part.added",
                {**self._where(), "content_index": len(self._parts), "part": empty},
                out,
            )
        self._text.append(text)
        fields: dict[str, Any] = {**self._where(), "content_index": len(self._parts), "delta": text}
        if field == "content":
            fields["logprobs"] = []
        self._event(PARTS[field][2] + ".delta", fields, out)

    def _tool_delta(self, call: Any, out: list[bytes]) -> None:
        if not isinstance(call, dict) or not isinstance(call.get("index"), int):
            raise UpstreamProtocolError("the upstream sent a tool call delta without an index")
        index: int = call["index"]
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        if index not in self._tools:
            name = function.get("name")
            if not isinstance(name, str) or not name:
                raise UpstreamProtocolError(f"the upstream's tool call {index} starts without a name")
            call_id = call.get("id")
            call_id = call_id if isinstance(call_id, str) and call_id else f"call_{index}"
            self._close_item(out, "completed")
            self._tools.add(index)
            self._open_item(function_call_item(call_id, name, "", "in_progress"), out)
            self._tool = index
        elif self._tool != index:
            raise UpstreamProtocolError(
                f"the upstream's tool call {index} continued after another item began"
            )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._text.append(arguments)
            self._event("response.function_call_arguments.delta", {**self._where(), "delta": arguments}, out)

    def _item_id(self, prefix: str) -> str:
        """prefix + chat id; a second item of the same kind gets its output index too, to stay unique."""
        item_id = prefix + self._chat_id
        if item_id in self._used_ids:
            item_id = f"{item_id}_{len(self._output)}"
        self._used_ids.add(item_id)
        return item_id

    def _where(self) -> dict[str, Any]:
        assert self._item is not None
        return {"item_id": self._item["id"], "output_index": len(self._output)}

    def _open_item(self, item: dict[str, Any], out: list[bytes]) -> dict[str, Any]:
        self._item = item
        self._text = []
        self._event("response.output_item.added", {"output_index": len(self._output), "item": item}, out)
        return item

    def _close_part(self, out: list[bytes]) -> None:
        if self._part is None:
            return
        kind, name, prefix = PARTS[self._part]
        text = "".join(self._text)
        where = {**self._where(), "content_index": len(self._parts)}
        done: dict[str, Any] = {**where, name: text}
        if kind == "output_text":
            done["logprobs"] = []
        self._event(prefix + ".done", done, out)
        part = text_part(text) if kind == "output_text" else {"type": kind, name: text}
        self._event("response.content_part.done", {**where, "part": part}, out)
        self._parts.append(part)
        self._part = None
        self._text = []

    def _close_item(self, out: list[bytes], status: str) -> None:
        item = self._item
        if item is None:
            return
        kind = item["type"]
        done: dict[str, Any]
        if kind == "reasoning":
            text = "".join(self._text)
            where = {**self._where(), "summary_index": 0}
            self._event("response.reasoning_summary_text.done", {**where, "text": text}, out)
            part = {"type": "summary_text", "text": text}
            self._event("response.reasoning_summary_part.done", {**where, "part": part}, out)
            done = reasoning_item(item["id"], text)
        elif kind == "message":
            self._close_part(out)
            done = message_item(item["id"], self._parts, status)
            self._parts = []
        else:
            if not self._text:  # a call without arguments: "{}", as the non-streamed answer says
                self._text.append("{}")
                self._event("response.function_call_arguments.delta", {**self._where(), "delta": "{}"}, out)
            arguments = "".join(self._text)
            done = function_call_item(item["call_id"], item["name"], arguments, status)
            self._event(
                "response.function_call_arguments.done",
                {**self._where(), "name": item["name"], "arguments": arguments},
                out,
            )
            self._tool = None
        self._event("response.output_item.done", {"output_index": len(self._output), "item": done}, out)
        self._output.append(done)
        self._item = None
        self._text = []
