"""What the benchmark mock upstream (bench/mock_upstream.py) answers, as bytes: its fixed answers and, per
streaming API, a stream's opening events, one token event and its closing events (`StreamFormat`).

Chat streams are `data:` events; Messages and Responses streams named events (`event:` + `data:`), the
Responses ones with the `sequence_number` and the whole text in the `.done` events and the final
response, as OpenAI sends them. Each event is one HTTP/1.1 chunk, so each token event is one write. A
token event carries its send stamp (`t<ns> `) in the text field every translator passes through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

COMPLETION = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"This is a benchmark answer from '
    b'the mock upstream."},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}'
)
MESSAGE = (
    b'{"id":"msg_bench","type":"message","role":"assistant","model":"bench","content":[{"type":"text",'
    b'"text":"This is a benchmark answer from the mock upstream."}],"stop_reason":"end_turn",'
    b'"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":9}}'
)
# A Response as OpenAI writes one, its fields in OpenAI's order (`response_object` fills in the blanks).
RESPONSE_FIELDS: dict[str, object] = {
    "id": "resp_bench",
    "object": "response",
    "created_at": 1700000000,
    "status": "",
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "bench",
    "output": [],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "store": False,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": None,
    "user": None,
    "metadata": {},
}
RESPONSE_TEXT = "This is a benchmark answer from the mock upstream."


def response_object(status: str, output: list[object], usage: object) -> dict[str, object]:
    return {**RESPONSE_FIELDS, "status": status, "output": output, "usage": usage}


def message_item(status: str, parts: list[object]) -> dict[str, object]:
    return {"id": "msg_bench", "type": "message", "status": status, "role": "assistant", "content": parts}


def text_part(text: str) -> dict[str, object]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def responses_usage(output_tokens: int) -> dict[str, object]:
    return {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 12 + output_tokens,
    }


RESPONSE = orjson.dumps(
    response_object("completed", [message_item("completed", [text_part(RESPONSE_TEXT)])], responses_usage(9))
)
MODELS = b'{"object":"list","data":[{"id":"bench","object":"model","created":1700000000,"owned_by":"bench"}]}'

CHUNK_PREFIX = (
    b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench",'
)
FINAL_EVENT = CHUNK_PREFIX + b'"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
USAGE_EVENT = (
    CHUNK_PREFIX + b'"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}'
)


def _chunk(event: bytes) -> bytes:
    """One SSE event as one HTTP/1.1 chunk."""
    data = b"data: " + event + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def token_event(index: int, stamp_ns: int) -> bytes:
    role = b'"role":"assistant",' if index == 0 else b""
    return _chunk(
        CHUNK_PREFIX
        + b'"choices":[{"index":0,"delta":{'
        + role
        + b'"content":"t%d "},"finish_reason":null}]}' % stamp_ns
    )


def _named_chunk(name: bytes, data: bytes) -> bytes:
    """One named SSE event (Anthropic's `event:` + `data:` lines) as one HTTP/1.1 chunk."""
    event = b"event: " + name + b"\ndata: " + data + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(event), event)


# Anthropic's stream opens in the order of its docs: message_start, the text block, one ping. The closing
# events go out as one write, like the chat stream's tail (finish chunk, usage, [DONE]).
MESSAGES_HEAD = (
    _named_chunk(
        b"message_start",
        b'{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant",'
        b'"model":"bench","content":[],"stop_reason":null,"stop_sequence":null,'
        b'"usage":{"input_tokens":12,"output_tokens":1}}}',
    )
    + _named_chunk(
        b"content_block_start",
        b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    )
    + _named_chunk(b"ping", b'{"type":"ping"}')
)


def text_delta_event(index: int, stamp_ns: int) -> bytes:
    """One Messages `content_block_delta` carrying the send stamp in its text (`index` is unused)."""
    return _named_chunk(
        b"content_block_delta",
        b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"t%d "}}' % stamp_ns,
    )


def messages_tail(stamps: list[int], include_usage: bool) -> bytes:
    tokens = len(stamps)
    return (
        _named_chunk(b"content_block_stop", b'{"type":"content_block_stop","index":0}')
        + _named_chunk(
            b"message_delta",
            b'{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
            b'"usage":{"output_tokens":%d}}' % tokens,
        )
        + _named_chunk(b"message_stop", b'{"type":"message_stop"}')
        + b"0\r\n\r\n"
    )


STREAM_TAIL = _chunk(FINAL_EVENT)
USAGE_TAIL = _chunk(USAGE_EVENT)
DONE_TAIL = _chunk(b"[DONE]") + b"0\r\n\r\n"


TokenEvent = Callable[[int, int], bytes]  # (index, send stamp in ns) -> one chunked SSE event


def chat_tail(stamps: list[int], include_usage: bool) -> bytes:
    return STREAM_TAIL + (USAGE_TAIL if include_usage else b"") + DONE_TAIL


def _response_event(name: str, sequence: int, fields: dict[str, object]) -> bytes:
    """One Responses event: named, its `type` and `sequence_number` in the data, as OpenAI sends them."""
    data = orjson.dumps({"type": name, **fields, "sequence_number": sequence})
    return _named_chunk(name.encode(), data)


WHERE = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}
RESPONSES_HEAD = (
    _response_event("response.created", 0, {"response": response_object("in_progress", [], None)})
    + _response_event("response.in_progress", 1, {"response": response_object("in_progress", [], None)})
    + _response_event(
        "response.output_item.added", 2, {"output_index": 0, "item": message_item("in_progress", [])}
    )
    + _response_event("response.content_part.added", 3, {**WHERE, "part": text_part("")})
)
RESPONSES_OPENING = 4  # events before the first delta


def output_text_delta_event(index: int, stamp_ns: int) -> bytes:
    """One `response.output_text.delta` carrying the send stamp in its `delta`."""
    return _named_chunk(
        b"response.output_text.delta",
        b'{"type":"response.output_text.delta","item_id":"msg_bench","output_index":0,"content_index":0,'
        b'"delta":"t%d ","logprobs":[],"sequence_number":%d}' % (stamp_ns, RESPONSES_OPENING + index),
    )


def responses_tail(stamps: list[int], include_usage: bool) -> bytes:
    """The closing events, each `.done` with the whole text the deltas sent."""
    text = "".join(f"t{stamp} " for stamp in stamps)
    sequence = RESPONSES_OPENING + len(stamps)
    item = message_item("completed", [text_part(text)])
    response = response_object("completed", [item], responses_usage(len(stamps)))
    return (
        _response_event("response.output_text.done", sequence, {**WHERE, "text": text, "logprobs": []})
        + _response_event("response.content_part.done", sequence + 1, {**WHERE, "part": text_part(text)})
        + _response_event("response.output_item.done", sequence + 2, {"output_index": 0, "item": item})
        + _response_event("response.completed", sequence + 3, {"response": response})
        + b"0\r\n\r\n"
    )


@dataclass(frozen=True, slots=True)
class StreamFormat:
    """What a stream of one API looks like: its opening events, one token event, its closing events."""

    head: bytes
    token: TokenEvent
    # (the token events' send stamps, include_usage) -> the closing events and the last chunk
    tail: Callable[[list[int], bool], bytes]


CHAT_STREAM = StreamFormat(b"", token_event, chat_tail)
MESSAGES_STREAM = StreamFormat(MESSAGES_HEAD, text_delta_event, messages_tail)
RESPONSES_STREAM = StreamFormat(RESPONSES_HEAD, output_text_delta_event, responses_tail)
