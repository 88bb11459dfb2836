"""Both relays keep what they hand the client while a stream is priced (`stats.streamed`): the very
pieces, not copies, bounded; a stream that ends normally lets go of them at once, a cut one after its
finish callbacks read them. Event relays note when their usage is only what arrived before a cut."""

from __future__ import annotations

import orjson
import pytest

from gateway.errors import UpstreamReadError
from gateway.streaming.event_relay import EventRelay
from gateway.streaming.relay import StreamRelay, StreamStats
from gateway.streaming.sse import DONE_FRAME
from gateway.streaming.stats import STREAMED_LIMIT
from gateway.translate.messages_messages import MessagesEvents
from tests.streaming.test_streaming_relay import ScriptedUpstream, chunk, openai_events, sse

pytestmark = pytest.mark.timeout(10)

MESSAGE_START = b'{"type":"message_start","message":{"usage":{"input_tokens":3,"output_tokens":1}}}'
TEXT_DELTA = b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}'


def kept_stats() -> StreamStats:
    stats = StreamStats("req_test", "sim", "m")
    stats.streamed = []
    return stats


def named(name: str, data: bytes) -> bytes:
    return f"event: {name}\n".encode() + b"data: " + data + b"\n\n"


async def test_a_cut_chat_stream_keeps_the_pieces_it_handed_out_until_its_callbacks_ran() -> None:
    stats = kept_stats()
    seen: list[list[bytes]] = []
    reads = [sse(chunk("a"), chunk("b")), sse(chunk("c")), UpstreamReadError("dropped")]
    relay = StreamRelay(ScriptedUpstream(reads), stats, events=openai_events(drop_usage=False))
    relay.on_finish.append(lambda s: seen.append(list(s.streamed)) if s.streamed else None)
    await relay.prime()
    frames = [frame async for frame in relay.frames()]
    await relay.aclose()

    assert stats.status == "error"
    [kept] = seen
    assert len(kept) == 2 and all(piece is frame for piece, frame in zip(kept, frames, strict=False))
    assert stats.streamed is None  # read by the callbacks, then let go


async def test_a_complete_stream_lets_go_of_them_before_it_closes() -> None:
    stats = kept_stats()
    reads = [sse(chunk("a"), chunk(finish="stop")), DONE_FRAME]
    relay = StreamRelay(ScriptedUpstream(reads), stats, events=openai_events(drop_usage=False))
    seen: list[object] = []
    relay.on_finish.append(lambda s: seen.append(s.streamed))
    await relay.prime()
    _ = [frame async for frame in relay.frames()]
    assert stats.streamed is None
    await relay.aclose()
    assert seen == [None]


async def test_without_prices_nothing_is_kept() -> None:
    stats = StreamStats("req_test", "sim", "m")
    relay = StreamRelay(
        ScriptedUpstream([sse(chunk("a")), UpstreamReadError("x")]),
        stats,
        events=openai_events(drop_usage=False),
    )
    await relay.prime()
    _ = [frame async for frame in relay.frames()]
    await relay.aclose()
    assert stats.streamed is None and stats.status == "error"


async def test_a_cut_messages_stream_keeps_its_frames_and_marks_its_usage_partial() -> None:
    stats = kept_stats()
    seen: list[tuple[list[bytes], dict[str, object] | None, bool]] = []
    reads = [
        named("message_start", MESSAGE_START),
        named("content_block_delta", TEXT_DELTA),
        UpstreamReadError("x"),
    ]
    relay = EventRelay(ScriptedUpstream(reads), stats, MessagesEvents("sim"))
    relay.on_finish.append(
        lambda s: seen.append((list(s.streamed) if s.streamed else [], s.usage, s.usage_partial))
    )
    await relay.prime()
    frames = [frame async for frame in relay.frames()]
    await relay.aclose()

    [(kept, usage, partial)] = seen
    assert b"".join(kept) == b"".join(frames[:-1])  # all but the final error event
    assert usage is not None and usage["prompt_tokens"] == 3 and partial


async def test_a_complete_messages_stream_has_final_usage_and_lets_go() -> None:
    stats = kept_stats()
    delta = orjson.dumps(
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}
    )
    reads = [
        named("message_start", MESSAGE_START),
        named("content_block_delta", TEXT_DELTA),
        named("message_delta", delta) + named("message_stop", b'{"type":"message_stop"}'),
    ]
    relay = EventRelay(ScriptedUpstream(reads), stats, MessagesEvents("sim"))
    await relay.prime()
    _ = [frame async for frame in relay.frames()]
    assert stats.streamed is None
    await relay.aclose()
    assert stats.usage is not None and stats.usage["completion_tokens"] == 5 and not stats.usage_partial


async def test_past_the_limit_nothing_more_is_kept() -> None:
    stats = kept_stats()
    big = "x" * 1000
    reads = [sse(*(chunk(big) for _ in range(100))) for _ in range(15)]  # ~1.6 MB in pieces of ~107 kB
    relay = StreamRelay(
        ScriptedUpstream([*reads, UpstreamReadError("x")]), stats, events=openai_events(drop_usage=False)
    )
    kept: list[bytes] = []
    relay.on_finish.append(lambda s: kept.extend(s.streamed or ()))
    await relay.prime()
    frames = [frame async for frame in relay.frames()]
    await relay.aclose()
    size = sum(len(piece) for piece in kept)
    assert size <= STREAMED_LIMIT < stats.bytes
    assert kept == frames[: len(kept)] and size + len(frames[len(kept)]) > STREAMED_LIMIT
