"""Anthropic Messages stream over an OpenAI chat stream: golden transcripts fed at every split.

`golden/messages_chat/NAME.upstream.sse` (chunks as a chat upstream sends them) -> `NAME.client.sse` (the
client's bytes, compared byte for byte) and `NAME.message.json` (the final message the anthropic SDK's own
accumulator builds from those bytes). Each upstream is fed through `EventParser` and the translator the
way `EventRelay` does it: whole, split into two reads at every byte boundary, and one byte per read.
`GOLDEN_UPDATE=1 pytest ...` rewrites the expected files from the code (then read the diff).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from gateway.config.models import ProviderConfig
from gateway.errors import UpstreamError, UpstreamProtocolError
from gateway.streaming.event_relay import EventRelay
from gateway.streaming.sse import EventParser
from gateway.streaming.stats import StreamStats
from gateway.translate.messages_chat import MessagesToChat
from gateway.translate.messages_chat_stream import ChatStreamToMessages

GOLDEN = Path(__file__).parent / "golden" / "messages_chat"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
MODEL = "claude-sonnet-4-5"
EVENTS: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)
COMPLETE = sorted(
    path.name.removesuffix(".upstream.sse")
    for path in GOLDEN.glob("stream_*.upstream.sse")
    if path.name != "stream_cut_off.upstream.sse"
)


def relay(reads: Iterator[bytes] | list[bytes], events: ChatStreamToMessages | None = None) -> bytes:
    """What `EventRelay` hands the client for these upstream reads (without its error handling)."""
    events = events or ChatStreamToMessages(MODEL)
    parser = EventParser()
    out: list[bytes] = []
    for read in reads:
        for name, data in parser.feed(read):
            out.append(events.feed(name, data))
            if events.ended:
                return b"".join([*out, events.end()])
    for name, data in parser.flush():
        out.append(events.feed(name, data))
        if events.ended:
            break
    out.append(events.end())
    return b"".join(out)


def splits(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    yield "whole", [data]
    for cut in range(1, len(data)):
        yield f"split at {cut}", [data[:cut], data[cut:]]
    yield "one byte per read", [data[i : i + 1] for i in range(len(data))]


def final_message(client: bytes) -> dict[str, Any]:
    """The client's stream checked event by event with the SDK's types, then accumulated by the SDK."""
    snapshot: Any = None
    json_buffers: dict[int, bytes] = {}
    for name, data in EventParser().feed(client):
        payload = orjson.loads(data)
        assert payload["type"] == name
        if name == "ping":
            assert payload == {"type": "ping"}
            continue
        event = EVENTS.validate_python(payload)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_buffers)
    assert snapshot is not None
    result: dict[str, Any] = snapshot.to_dict()
    return result


@pytest.mark.parametrize("name", COMPLETE)
def test_stream_goldens_at_every_split(name: str) -> None:
    upstream = (GOLDEN / f"{name}.upstream.sse").read_bytes()
    whole = relay([upstream])
    if UPDATE:
        (GOLDEN / f"{name}.client.sse").write_bytes(whole)
    expected = (GOLDEN / f"{name}.client.sse").read_bytes()
    for how, reads in splits(upstream):
        assert relay(reads) == expected, how


@pytest.mark.parametrize("name", COMPLETE)
def test_the_sdk_builds_the_expected_message(name: str) -> None:
    message = final_message((GOLDEN / f"{name}.client.sse").read_bytes())
    path = GOLDEN / f"{name}.message.json"
    if UPDATE:
        path.write_text(orjson.dumps(message, option=orjson.OPT_INDENT_2).decode() + "\n")
    assert message == orjson.loads(path.read_bytes())


def test_the_stream_order_is_anthropics() -> None:
    client = (GOLDEN / "stream_two_tools.client.sse").read_bytes()
    names = [name for name, _ in EventParser().feed(client)]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    starts = [
        orjson.loads(data) for name, data in EventParser().feed(client) if name == "content_block_start"
    ]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [
        (0, "text"),
        (1, "tool_use"),
        (2, "tool_use"),
    ]


def test_a_cut_off_stream_raises_at_every_split() -> None:
    upstream = (GOLDEN / "stream_cut_off.upstream.sse").read_bytes()
    for how, reads in splits(upstream):
        with pytest.raises(UpstreamProtocolError, match="cut off"):
            relay(reads)
        del how


def test_the_closing_frames_go_out_once_and_usage_is_chat_shaped() -> None:
    events = ChatStreamToMessages(MODEL)
    upstream = (GOLDEN / "stream_cached_usage.upstream.sse").read_bytes()
    for name, data in EventParser().feed(upstream):
        events.feed(name, data)
    assert events.ended
    assert events.usage is not None and events.usage["prompt_tokens_details"] == {"cached_tokens": 1920}
    assert events.end().endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert events.end() == b""
    assert events.feed("", b'{"choices":[]}') == b""  # nothing after [DONE]


CHUNK = b'{"id":"c","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}'


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"not json", UpstreamProtocolError, "not JSON"),
        (b"[1, 2]", UpstreamProtocolError, "not an object"),
        (b'{"choices":["x"]}', UpstreamProtocolError, "choice that is not an object"),
        (
            b'{"choices":[{"delta":{"tool_calls":[{"function":{}}]}}]}',
            UpstreamProtocolError,
            "without an index",
        ),
        (
            b'{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a"}]}}]}',
            UpstreamProtocolError,
            "without a name",
        ),
        (b'{"error":{"message":"model overloaded","code":503}}', UpstreamError, "model overloaded"),
        (b'{"error":"boom"}', UpstreamError, "boom"),
    ],
)
def test_malformed_and_error_chunks_raise(data: bytes, error: type[UpstreamError], words: str) -> None:
    events = ChatStreamToMessages(MODEL)
    events.feed("", CHUNK)
    with pytest.raises(error) as caught:
        events.feed("", data)
    assert words in caught.value.message


def test_a_tool_call_continued_after_another_began_is_refused() -> None:
    events = ChatStreamToMessages(MODEL)
    call = b'{"choices":[{"delta":{"tool_calls":[{"index":%d,"function":{"name":"t","arguments":""}}]}}]}'
    events.feed("", call % 0)
    events.feed("", call % 1)
    with pytest.raises(UpstreamProtocolError, match="continued after another block"):
        events.feed("", b'{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}')


def test_the_error_event_is_anthropics() -> None:
    frame = ChatStreamToMessages(MODEL).error(UpstreamProtocolError("cut off"))
    assert (
        frame == b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":"cut off"}}\n\n'
    )


class Upstream:
    """A `ByteStream` over fixed reads."""

    def __init__(self, reads: list[bytes]) -> None:
        self._reads = reads
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for read in self._reads:
            yield read

    @property
    def complete(self) -> bool:
        return True

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize("name", ["stream_two_tools", "stream_whole_tool_no_usage", "stream_cut_off"])
async def test_through_the_event_relay(name: str) -> None:
    upstream_bytes = (GOLDEN / f"{name}.upstream.sse").read_bytes()
    upstream = Upstream([upstream_bytes[i : i + 7] for i in range(0, len(upstream_bytes), 7)])
    translator = MessagesToChat(
        {"model": MODEL}, ProviderConfig(name="up", type="openai", base_url="http://up.test/v1"), stream=True
    )
    stats = StreamStats(stream_id="s", provider="up", model=MODEL)
    relay_ = translator.open_relay(upstream, stats, [])
    assert isinstance(relay_, EventRelay)
    await relay_.prime()
    out = b"".join([frame async for frame in relay_.frames()])
    await relay_.aclose()
    assert upstream.closed
    if name == "stream_cut_off":
        message = b"the upstream's stream ended before its finish_reason (cut off)"
        assert out.endswith(b'"type":"api_error","message":"' + message + b'"}}\n\n')
        assert b"event: error\n" in out
        assert stats.status == "error"
        return
    assert out == (GOLDEN / f"{name}.client.sse").read_bytes()
    assert stats.status == "ok"
    upstream_usage = [
        orjson.loads(d).get("usage") for _, d in EventParser().feed(upstream_bytes) if d != b"[DONE]"
    ]
    assert stats.usage == next((u for u in reversed(upstream_usage) if u), None)


def test_an_openai_refusal_is_text_that_stops_as_a_refusal() -> None:
    upstream = (
        b'data: {"id":"r","choices":[{"index":0,"delta":{"role":"assistant","refusal":"I can"}}]}\n\n'
        b'data: {"id":"r","choices":[{"index":0,"delta":{"refusal":"\'t help."},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    message = final_message(relay([upstream]))
    assert message["content"] == [{"type": "text", "text": "I can't help."}]
    assert message["stop_reason"] == "refusal"
