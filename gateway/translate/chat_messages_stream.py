"""An Anthropic Messages stream -> OpenAI `chat.completion.chunk` frames (the stream half of `chat_messages`).

Anthropic streams content blocks one after another; chat streams one message's deltas:
- `message_start` -> the first chunk, `delta: {role: assistant, content: ""}`;
- text -> `delta.content`; thinking -> `delta.reasoning_content` (DeepSeek's name), and at the block's end
  the whole block with its signature as `delta.thinking_blocks: [{index, type, thinking, signature}]`
  (LiteLLM's entries, plus `index`, the block's position among this turn's thinking blocks: an OpenAI-SDK
  style accumulator merges list entries by `index` and fails on a second entry without one);
  redacted_thinking -> the same, `{index, type: redacted_thinking, data}`;
- tool_use -> `delta.tool_calls` with `index` counting tool blocks from 0: the id and name first, then
  each `input_json_delta` as an arguments fragment (`"{}"` for a tool that streamed no input);
- `message_delta` -> the finish chunk (`delta: {}`), then the usage-only chunk (`choices: []`) when the
  client asked for `stream_options.include_usage`; `message_stop` ends the stream, `end()` adds `[DONE]`.
An `error` event raises `UpstreamStatusError` with the status Anthropic uses for its type (529 for
`overloaded_error`), so the relay ends the stream with the client's error frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.streaming.sse import DONE_FRAME, frame
from gateway.translate.anthropic_errors import ERROR_TYPES, read_anthropic_error
from gateway.translate.chat_messages_response import chat_usage, finish_reason, thinking_block, unshowable

# Anthropic's error type -> the HTTP status it answers that error with.
ERROR_STATUS = {error_type: status for status, error_type in ERROR_TYPES.items()}


@dataclass(slots=True)
class _Block:
    kind: str
    position: int = 0  # among the turn's tool blocks (tool_use) or thinking blocks (thinking)
    start: dict[str, Any] = field(default_factory=dict)  # the content_block_start block
    parts: list[str] = field(default_factory=list)  # thinking text or streamed arguments
    signature: str = ""


class MessagesStreamToChat:
    """`StreamEvents` for one stream (see `gateway/streaming/event_relay.py`)."""

    __slots__ = (
        "_blocks",
        "_created",
        "_ended",
        "_finished",
        "_id",
        "_include_usage",
        "_model",
        "_provider",
        "_started",
        "_thinking_count",
        "_tool_count",
        "_usage",
    )

    def __init__(self, *, created: int, include_usage: bool, provider: str = "") -> None:
        self._created = created
        self._include_usage = include_usage
        self._provider = provider
        self._id = ""
        self._model = ""
        self._usage: dict[str, Any] | None = None
        self._blocks: dict[int, _Block] = {}
        self._tool_count = 0
        self._thinking_count = 0
        self._started = False
        self._finished = False
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def usage(self) -> dict[str, Any] | None:
        return None if self._usage is None else chat_usage(self._usage)

    def feed(self, event: str, data: bytes) -> bytes:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError(f"Anthropic stream event {event!r} is not JSON") from None
        if not isinstance(payload, dict):
            raise UpstreamProtocolError(f"Anthropic stream event {event!r} is not an object")
        kind = event or payload.get("type")
        if kind == "ping":
            return b""
        if kind == "error":
            raise self._upstream_error(payload, data)
        if kind == "message_start":
            return self._message_start(payload)
        if not self._started:
            raise UpstreamProtocolError(f"Anthropic stream sent {kind!r} before message_start")
        if kind == "content_block_start":
            return self._block_start(payload)
        if kind == "content_block_delta":
            return self._block_delta(payload)
        if kind == "content_block_stop":
            return self._block_stop(payload)
        if kind == "message_delta":
            return self._message_delta(payload)
        if kind == "message_stop":
            self._ended = True
        return b""  # events Anthropic may add later carry nothing a chat client can use

    def end(self) -> bytes:
        if not self._ended or not self._finished:
            raise UpstreamProtocolError("Anthropic stream ended before its message_stop")
        return DONE_FRAME

    def error(self, exc: GatewayError) -> bytes:
        return frame(exc.body())

    def _upstream_error(self, payload: dict[str, Any], data: bytes) -> GatewayError:
        error = payload.get("error")
        error_type = error.get("type") if isinstance(error, dict) else None
        status = ERROR_STATUS.get(error_type, 500) if isinstance(error_type, str) else 500
        return read_anthropic_error(status, data, {}, self._provider, for_messages_client=False)

    def _chunk(self, delta: dict[str, Any], reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
        }
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI does: every chunk but the last has a null usage
        return frame(orjson.dumps(chunk))

    def _message_start(self, payload: dict[str, Any]) -> bytes:
        message = _object(payload, "message")
        if self._started:
            raise UpstreamProtocolError("Anthropic stream sent a second message_start")
        self._started = True
        self._id = "chatcmpl-" + str(message.get("id", ""))
        self._model = str(message.get("model", ""))
        usage = message.get("usage")
        self._usage = present_counts(usage) if isinstance(usage, dict) else {}
        return self._chunk({"role": "assistant", "content": ""})

    def _block_start(self, payload: dict[str, Any]) -> bytes:
        index = _index(payload)
        start = _object(payload, "content_block")
        kind = start.get("type")
        if kind == "text":
            self._blocks[index] = _Block("text")
            text = _text(start, "text")
            return self._chunk({"content": text}) if text else b""
        if kind == "tool_use":
            block = self._blocks[index] = _Block("tool_use", self._tool_count, start)
            self._tool_count += 1
            function = {"name": _text(start, "name"), "arguments": ""}
            call = {
                "index": block.position,
                "id": _text(start, "id"),
                "type": "function",
                "function": function,
            }
            return self._chunk({"tool_calls": [call]})
        if kind in ("thinking", "redacted_thinking"):
            block = self._blocks[index] = _Block(kind, self._thinking_count, start)
            self._thinking_count += 1
            if kind == "redacted_thinking":
                return b""
            text = start.get("thinking") or ""
            block.parts.append(text)
            block.signature = start.get("signature") or ""
            return self._chunk({"reasoning_content": text}) if text else b""
        raise unshowable(kind)

    def _block_delta(self, payload: dict[str, Any]) -> bytes:
        block = self._block(payload)
        delta = _object(payload, "delta")
        kind = delta.get("type")
        if kind == "text_delta" and block.kind == "text":
            return self._chunk({"content": _text(delta, "text")})
        if kind == "thinking_delta" and block.kind == "thinking":
            text = _text(delta, "thinking")
            block.parts.append(text)
            return self._chunk({"reasoning_content": text})
        if kind == "signature_delta" and block.kind == "thinking":
            block.signature += _text(delta, "signature")
            return b""
        if kind == "input_json_delta" and block.kind == "tool_use":
            fragment = _text(delta, "partial_json")
            if not fragment:
                return b""
            block.parts.append(fragment)
            call = {"index": block.position, "function": {"arguments": fragment}}
            return self._chunk({"tool_calls": [call]})
        raise UpstreamProtocolError(
            f"Anthropic {kind!r} cannot be shown to a chat client in a {block.kind} block"
        )

    def _block_stop(self, payload: dict[str, Any]) -> bytes:
        block = self._block(payload)
        if block.kind == "tool_use" and not block.parts:
            # Nothing streamed: the input is the start block's (`{}` for a tool without arguments).
            tool_input = block.start.get("input")
            arguments = orjson.dumps(tool_input if isinstance(tool_input, dict) else {}).decode()
            return self._chunk(
                {"tool_calls": [{"index": block.position, "function": {"arguments": arguments}}]}
            )
        if block.kind == "thinking":
            whole = {**block.start, "thinking": "".join(block.parts), "signature": block.signature}
            return self._chunk({"thinking_blocks": [{"index": block.position, **thinking_block(whole)}]})
        if block.kind == "redacted_thinking":
            entry = thinking_block(block.start)
            return self._chunk({"thinking_blocks": [{"index": block.position, **entry}]})
        return b""

    def _message_delta(self, payload: dict[str, Any]) -> bytes:
        delta = _object(payload, "delta")
        reason = finish_reason(delta.get("stop_reason"))
        usage = payload.get("usage")
        if isinstance(usage, dict) and self._usage is not None:
            self._usage.update(present_counts(usage))  # the latest count of each kind wins
        self._finished = True
        out = self._chunk({}, reason)
        if self._include_usage:
            usage_chunk = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": self.usage,
            }
            out += frame(orjson.dumps(usage_chunk))
        return out

    def _block(self, payload: dict[str, Any]) -> _Block:
        block = self._blocks.get(_index(payload))
        if block is None:
            raise UpstreamProtocolError("Anthropic stream event for a content block that did not start")
        return block


def present_counts(usage: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in usage.items() if value is not None}


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    value = payload.get(name)
    if not isinstance(value, dict):
        raise UpstreamProtocolError(f"Anthropic {payload.get('type')!r} event without a {name!r} object")
    return value


def _index(payload: dict[str, Any]) -> int:
    index = payload.get("index")
    if not isinstance(index, int) or isinstance(index, bool):
        raise UpstreamProtocolError(f"Anthropic {payload.get('type')!r} event without an integer index")
    return index


def _text(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise UpstreamProtocolError(f"Anthropic {obj.get('type')!r} without a string {name!r}")
    return value
