"""An OpenAI chat stream as an Anthropic Messages stream, event by event.

The first chunk opens the message (`message_start`, then one `ping`, as Anthropic does). Each kind of delta
goes into a content block of its own: `reasoning_content` into a `thinking` block (`thinking_delta`; a
chat upstream has no signature, so no `signature_delta` is sent), `content` into a `text` block (OpenAI's
`refusal` text too, and the stop reason is then `refusal`), each `tool_calls[i]` (by its `index`) into a
`tool_use` block whose arguments arrive as `input_json_delta`s. One block is open at a time; a new kind
of delta, or another tool call, closes it. Chat streams a tool call's fragments one call after the
other; a fragment for a call whose block is already closed cannot be expressed in Anthropic's stream and
is refused as a protocol error, and so is a tool call whose first fragment has no name.

The usage chunk comes after the finish_reason chunk, so the closing `message_delta` (stop reason and
usage) waits for `[DONE]` or the end of the body. A stream that ends without a finish_reason was cut off.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.streaming.sse import named_frame
from gateway.translate.anthropic_errors import anthropic_error_event
from gateway.translate.chat_stream_reader import ChatStreamReader
from gateway.translate.messages_chat_response import message_usage, reasoning_of, stop_reason

PING = named_frame("ping", b'{"type":"ping"}')
MESSAGE_STOP = named_frame("message_stop", b'{"type":"message_stop"}')


def _event(name: str, data: dict[str, Any]) -> bytes:
    return named_frame(name, orjson.dumps(data))


class ChatStreamToMessages(ChatStreamReader):
    """The `StreamEvents` of one Messages stream over a chat upstream; `model` is the client's name."""

    __slots__ = (
        "_called_tools",
        "_model",
        "_next_index",
        "_open",
        "_open_tool",
        "_refused",
        "_tool_blocks",
    )

    def __init__(self, model: str) -> None:
        super().__init__()  # `_started`: message_start went out
        self._model = model
        self._open: str | None = None  # the kind of the open block: "text", "thinking", "tool_use"
        self._open_tool: int | None = None  # the chat tool-call index of the open tool_use block
        self._next_index = 0  # the index of the next content block
        self._tool_blocks: dict[int, int] = {}  # chat tool-call index -> content block index
        self._called_tools = False
        self._refused = False

    def end(self) -> bytes:
        if self._closed:
            return b""
        if self._finish_reason is None:
            raise UpstreamProtocolError("the upstream's stream ended before its finish_reason (cut off)")
        self._closed = True
        out: list[bytes] = []
        self._close_block(out)
        usage: dict[str, int] = (
            message_usage(self._usage) if self._usage is not None else {"output_tokens": 0}
        )
        reason = (
            "refusal" if self._refused else stop_reason(self._finish_reason, called_tools=self._called_tools)
        )
        out.append(
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": None},
                    "usage": usage,
                },
            )
        )
        out.append(MESSAGE_STOP)
        return b"".join(out)

    def error(self, exc: GatewayError) -> bytes:
        return anthropic_error_event(exc)

    def _begin(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        out.append(self._message_start(chunk))

    def _message_start(self, chunk: dict[str, Any]) -> bytes:
        usage = message_usage(self._usage)
        message: dict[str, Any] = {
            "id": "msg_" + str(chunk.get("id") or ""),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 0},
        }
        return _event("message_start", {"type": "message_start", "message": message}) + PING

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        reasoning = reasoning_of(delta)
        if reasoning:
            self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            out.append(self._block_delta({"type": "thinking_delta", "thinking": reasoning}))
        for name in ("content", "refusal"):  # OpenAI's refusal text is text, and ends as a refusal
            text = delta.get(name)
            if isinstance(text, str) and text:
                self._refused = self._refused or name == "refusal"
                self._open_block("text", {"type": "text", "text": ""}, out)
                out.append(self._block_delta({"type": "text_delta", "text": text}))
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                self._tool_delta(call, out)

    def _tool_delta(self, call: Any, out: list[bytes]) -> None:
        if not isinstance(call, dict) or not isinstance(call.get("index"), int):
            raise UpstreamProtocolError("the upstream sent a tool call delta without an index")
        index: int = call["index"]
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        if index not in self._tool_blocks:
            name = function.get("name")
            if not isinstance(name, str) or not name:
                raise UpstreamProtocolError(f"the upstream's tool call {index} starts without a name")
            call_id = call.get("id")
            block = {
                "type": "tool_use",
                "id": call_id if isinstance(call_id, str) and call_id else f"call_{index}",
                "name": name,
                "input": {},
            }
            self._close_block(out)
            self._tool_blocks[index] = self._next_index
            self._called_tools = True
            self._start_block("tool_use", block, out)
            self._open_tool = index
        elif self._open_tool != index:
            raise UpstreamProtocolError(
                f"the upstream's tool call {index} continued after another block began"
            )
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(self._block_delta({"type": "input_json_delta", "partial_json": arguments}))

    def _open_block(self, kind: str, block: dict[str, Any], out: list[bytes]) -> None:
        if self._open != kind:
            self._close_block(out)
            self._start_block(kind, block, out)

    def _start_block(self, kind: str, block: dict[str, Any], out: list[bytes]) -> None:
        self._open = kind
        out.append(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": self._next_index, "content_block": block},
            )
        )

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        return _event(
            "content_block_delta", {"type": "content_block_delta", "index": self._next_index, "delta": delta}
        )

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is None:
            return
        out.append(_event("content_block_stop", {"type": "content_block_stop", "index": self._next_index}))
        self._open = None
        self._open_tool = None
        self._next_index += 1
