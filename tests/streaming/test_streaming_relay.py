"""The relay and the two streamers in-process: frames, usage, failures, close path, disconnects, logging.

Upstreams here are scripted byte streams; the end-to-end tests (test_streaming_e2e.py) use real sockets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import pytest

from gateway.config.models import ProviderConfig
from gateway.errors import UpstreamProtocolError, UpstreamReadError
from gateway.streaming.asgi_streamer import AsgiStreamer
from gateway.streaming.event_scan import carries_usage
from gateway.streaming.relay import StreamRelay, StreamStats
from gateway.streaming.sse import DONE_FRAME
from gateway.streaming.starlette_streamer import StarletteStreamer
from gateway.translate.openai_openai import OpenAIChatToOpenAIChat

pytestmark = pytest.mark.timeout(10)


def chunk(content: str | None = None, *, finish: str | None = None, usage: Any = "absent") -> bytes:
    body: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [] if content is None and finish is None else [{"index": 0, "delta": {}}],
    }
    if content is not None:
        body["choices"][0]["delta"] = {"content": content}
    if finish is not None:
        body["choices"][0]["finish_reason"] = finish
    if usage != "absent":
        body["usage"] = usage
    return orjson.dumps(body)


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def sse(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + payload + b"\n\n" for payload in payloads)


class ScriptedUpstream:
    """Upstream reads as scripted: bytes, an exception to raise, or `HANG` (wait until closed)."""

    HANG = object()

    def __init__(self, reads: Iterable[Any]) -> None:
        self.reads = list(reads)
        self.closed = asyncio.Event()
        self.close_count = 0
        self.read_count = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for read in self.reads:
            if read is ScriptedUpstream.HANG:
                await self.closed.wait()
                return
            if isinstance(read, BaseException):
                raise read
            self.read_count += 1
            yield read

    complete = False  # the relay then reads on to the end of the body before releasing it

    async def aclose(self) -> None:
        self.close_count += 1
        self.closed.set()


def openai_events(*, drop_usage: bool) -> OpenAIChatToOpenAIChat:
    """The OpenAI pair's stream policy: with `stream_usage` on and a client that did not ask for usage,
    the usage-only chunk is dropped."""
    config = ProviderConfig(name="sim", type="openai", base_url="http://sim.test/v1", stream_usage=drop_usage)
    return OpenAIChatToOpenAIChat({}, config, stream=True)


def make_relay(reads: Iterable[Any], *, drop_usage: bool = False) -> tuple[StreamRelay, ScriptedUpstream]:
    upstream = ScriptedUpstream(reads)
    stats = StreamStats("req_test", "sim", "m")
    return StreamRelay(upstream, stats, events=openai_events(drop_usage=drop_usage)), upstream


async def relay_all(relay: StreamRelay) -> list[bytes]:
    await relay.prime()
    frames = [frame async for frame in relay.frames()]
    await relay.aclose()
    return frames


async def test_every_event_goes_out_whole_however_upstream_split_them() -> None:
    events = [chunk("a"), chunk("b"), chunk(finish="stop")]
    stream = sse(*events) + b"data: [DONE]\n\n"
    reads = [stream[:5], stream[5:90], stream[90:91], stream[91:]]  # splits inside and across events
    relay, upstream = make_relay(reads)

    frames = await relay_all(relay)

    assert b"".join(frames) == stream
    # A piece per read that completed events, each a whole number of events: never a part of one.
    assert len(frames) <= len(reads)
    assert all(frame.startswith(b"data: ") and frame.endswith(b"\n\n") for frame in frames)
    assert frames[-1].endswith(DONE_FRAME)
    assert upstream.close_count == 1
    assert relay.stats.chunks == 3 and relay.stats.bytes == len(stream)
    assert relay.stats.upstream_bytes == len(stream)


async def test_one_event_per_read_gives_one_frame_per_event() -> None:
    events = [chunk("a"), chunk("b"), chunk(finish="stop")]
    relay, _ = make_relay([sse(event) for event in events] + [DONE_FRAME])

    frames = await relay_all(relay)

    assert frames == [sse(event) for event in events] + [DONE_FRAME]


async def test_several_events_in_one_read_go_out_together_from_that_read() -> None:
    read = sse(chunk("a"), chunk("b"), chunk("c"))
    relay, upstream = make_relay([read, ScriptedUpstream.HANG])

    async def first_piece() -> bytes:
        await relay.prime()
        frames = relay.frames()
        got = await anext(frames)  # would hang if the relay waited for another read
        await frames.aclose()
        await relay.aclose()
        return got

    piece = await asyncio.wait_for(first_piece(), 2)
    assert piece is read  # plain events pass through as they came: no parsing copy, no re-framing
    assert upstream.read_count == 1
    assert relay.stats.chunks == 3


async def test_a_read_with_a_keepalive_goes_through_the_parser_in_one_piece() -> None:
    read = b": keep-alive\n\n" + sse(chunk("a")) + b"data: " + chunk("b") + b"\r\n\r\n" + DONE_FRAME
    relay, _ = make_relay([read])

    frames = await relay_all(relay)

    assert frames == [sse(chunk("a"), chunk("b")) + DONE_FRAME]
    assert relay.stats.chunks == 2


async def test_a_malformed_event_mid_read_ends_the_stream_after_the_events_before_it() -> None:
    relay, _ = make_relay([sse(chunk("a"), chunk("b")) + b'data: {"id":"c1","choi\n\n' + sse(chunk("c"))])

    frames = await relay_all(relay)

    assert frames[0] == sse(chunk("a"), chunk("b"))
    assert len(frames) == 2 and frames[1].startswith(b'data: {"error":')
    assert relay.stats.status == "error" and relay.stats.chunks == 2


@pytest.mark.parametrize("drop_usage", [True, False])
async def test_usage_is_recorded_and_the_usage_only_chunk_dropped_when_asked(drop_usage: bool) -> None:
    events = [chunk("a", usage=None), chunk(finish="stop", usage=None), chunk(usage=USAGE)]
    relay, _ = make_relay([sse(*events) + b"data: [DONE]\n\n"], drop_usage=drop_usage)

    frames = await relay_all(relay)

    assert relay.stats.usage == USAGE
    expected = events[:2] if drop_usage else events
    assert frames == [sse(*expected) + DONE_FRAME]  # the read's events in one piece


async def test_usage_on_a_chunk_with_choices_is_recorded_but_never_dropped() -> None:
    events = [chunk("a"), chunk(finish="stop", usage=USAGE)]
    relay, _ = make_relay([sse(*events) + b"data: [DONE]\n\n"], drop_usage=True)

    frames = await relay_all(relay)

    assert relay.stats.usage == USAGE
    assert b"".join(frames) == sse(*events) + DONE_FRAME


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"usage":null}', False),
        (b'{"usage": null}', False),
        (b'{"usage" :\tnull}', False),
        (b'{"usage":{"total_tokens":1}}', True),
        (b'{"usage": {"total_tokens":1}}', True),
        (b'{"choices":[{"delta":{"content":"usage"}}]}', False),  # a value, not a key
        (b'{"choices":[{"delta":{"content":"\\"usage\\": 1"}}]}', False),  # quoted inside a string
        (b'{"a":"usage","usage":{"x":1}}', True),
        (b"{}", False),
    ],
)
def test_carries_usage_without_parsing(payload: bytes, expected: bool) -> None:
    assert carries_usage(payload) is expected


@pytest.mark.parametrize(
    ("reads", "code"),
    [
        (
            [sse(chunk("a")), UpstreamReadError("connection to provider 'sim' failed: reset")],
            "upstream_read_error",
        ),
        ([sse(chunk("a")) + b'data: {"id": "cut\n\n'], "upstream_protocol_error"),
        ([sse(chunk("a")) + b"data: not json\n\n"], "upstream_protocol_error"),
        ([sse(chunk("a")) + b'data: {"id": "cut'], "upstream_protocol_error"),  # body ends inside an event
        ([sse(chunk("a"))], "upstream_protocol_error"),  # body ends without finish_reason nor [DONE]
    ],
    ids=["read error", "truncated event", "not json", "ends inside an event", "ends unfinished"],
)
async def test_a_mid_stream_failure_is_one_final_error_event(reads: list[Any], code: str) -> None:
    relay, upstream = make_relay(reads)

    frames = await relay_all(relay)

    assert frames[0] == b"data: " + chunk("a") + b"\n\n"
    assert len(frames) == 2
    assert frames[1].startswith(b"data: ") and frames[1].endswith(b"\n\n")
    error = orjson.loads(frames[1][6:])["error"]
    assert error["code"] == code and error["type"] == "server_error"
    assert relay.stats.status == "error" and relay.stats.error
    assert upstream.close_count == 1


async def test_a_finished_answer_without_done_gets_one() -> None:
    relay, _ = make_relay([sse(chunk("a"), chunk(finish="stop"))])
    assert (await relay_all(relay))[-1] == DONE_FRAME
    assert relay.stats.status == "ok"


async def test_prime_fails_over_when_upstream_ends_before_any_event() -> None:
    relay, upstream = make_relay([b": ping\n\n"])

    async def prime() -> None:
        try:
            await relay.prime()
        finally:
            await relay.aclose()

    with pytest.raises(UpstreamProtocolError, match="before any event"):
        await prime()
    assert relay.stats.status == "error"
    assert upstream.close_count == 1


async def test_after_done_the_body_is_read_out_and_the_upstream_closed_before_the_last_frame_ends() -> None:
    relay, upstream = make_relay([sse(chunk("a")) + b"data: [DONE]\n\n", b"", b"trailing"])

    async def scenario() -> tuple[int, int]:
        await relay.prime()
        frames = relay.frames()
        async for _ in frames:
            pass
        return upstream.read_count, upstream.close_count

    assert await scenario() == (3, 1)


async def test_close_runs_callbacks_once_and_survives_a_failing_one() -> None:
    relay, upstream = make_relay([sse(chunk("a"), chunk(finish="stop")) + b"data: [DONE]\n\n"])
    seen: list[str] = []

    async def failing(stats: StreamStats) -> None:
        raise RuntimeError("observer bug")

    relay.on_finish.extend([failing, lambda stats: seen.append(stats.status)])

    async def scenario() -> None:
        await relay_all(relay)
        await relay.aclose()

    await scenario()
    assert seen == ["ok"]
    assert upstream.close_count == 1


async def test_no_debug_work_when_debug_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object) -> None:
        raise AssertionError("per-piece DEBUG line built while DEBUG is off")

    monkeypatch.setattr(StreamRelay, "_log_piece", explode)
    logging.getLogger("gateway.stream").setLevel(logging.INFO)
    try:
        events = [chunk("a"), chunk(finish="stop")]
        relay, _ = make_relay([sse(event) for event in events] + [DONE_FRAME])
        assert await relay_all(relay) == [sse(event) for event in events] + [DONE_FRAME]
    finally:
        logging.getLogger("gateway.stream").setLevel(logging.NOTSET)


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO])
async def test_framing_is_the_same_at_every_log_level(level: int, caplog: pytest.LogCaptureFixture) -> None:
    """DEBUG logs around the one framing path; it never frames differently (reads with several events,
    an event split across reads, a usage chunk to drop)."""
    events = [chunk("a"), chunk("b"), chunk(finish="stop")]
    usage = b'{"id":"x","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
    stream = sse(*events) + sse(usage) + DONE_FRAME
    reads = [stream[:70], stream[70:200], stream[200:]]
    with caplog.at_level(level, logger="gateway.stream"):
        relay, _ = make_relay(reads, drop_usage=True)
        frames = await relay_all(relay)
    assert b"".join(frames) == sse(*events) + DONE_FRAME
    assert relay.stats.usage == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    pieces = [record.getMessage() for record in caplog.records if " piece=" in record.getMessage()]
    if level == logging.DEBUG:
        assert len(pieces) == len(frames)  # a line per piece handed out, counting its events
        counted = sum(int(line.split(" events=")[1].split()[0]) for line in pieces)
        assert counted == len(events) + 1  # and [DONE]
    else:
        assert pieces == []
    # The same pieces whatever the level: framing is decided by the reads alone.
    relay_again, _ = make_relay(reads, drop_usage=True)
    assert await relay_all(relay_again) == frames


# The streamers, driven by hand-made ASGI receive/send.


class Client:
    """The ASGI side of one HTTP client: records what is sent, disconnects on request."""

    def __init__(self, *, disconnect_after: float | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.gone = asyncio.Event()
        self.disconnect_after = disconnect_after

    async def receive(self) -> dict[str, Any]:
        if self.disconnect_after is not None:
            await asyncio.sleep(self.disconnect_after)
            self.gone.set()
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.gone.set()  # as uvicorn: once the response is complete, receive() says disconnect

    @property
    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.messages if m["type"] == "http.response.body"]


SCOPE = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "method": "POST"}
HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8")]
STREAMERS = [AsgiStreamer, StarletteStreamer]


@pytest.mark.parametrize("streamer", STREAMERS)
async def test_streamers_send_one_body_message_per_completed_event(streamer: type) -> None:
    events = [chunk("a"), chunk("b"), chunk(finish="stop")]
    stream = sse(*events) + b"data: [DONE]\n\n"
    relay, upstream = make_relay([stream[index : index + 1] for index in range(len(stream))])

    async def scenario() -> Client:
        client = Client()
        await relay.prime()
        await streamer(relay, HEADERS)(SCOPE, client.receive, client.send)
        return client

    client = await scenario()

    assert client.messages[0]["type"] == "http.response.start"
    frames = [b"data: " + event + b"\n\n" for event in events] + [DONE_FRAME]
    if streamer is AsgiStreamer:  # `[DONE]` carries the end of the body: one write, not two
        assert client.bodies == frames
        assert client.messages[-1]["more_body"] is False
    else:
        assert client.bodies == [*frames, b""]
    assert relay.stats.status == "ok"
    assert upstream.close_count == 1


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
@pytest.mark.parametrize("streamer", STREAMERS)
async def test_a_disconnect_releases_a_silent_upstream_at_once_and_leaves_no_task(
    streamer: type, spec_version: str
) -> None:
    relay, upstream = make_relay([sse(chunk("a")), ScriptedUpstream.HANG])
    scope = {**SCOPE, "asgi": {"version": "3.0", "spec_version": spec_version}}

    async def scenario() -> tuple[float, set[asyncio.Task[Any]]]:
        client = Client(disconnect_after=0.05)
        await relay.prime()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(streamer(relay, HEADERS)(scope, client.receive, client.send), 2)
        elapsed = loop.time() - started
        await asyncio.sleep(0)  # let finalizers of abandoned generators run
        await asyncio.sleep(0)
        return elapsed, asyncio.all_tasks() - {asyncio.current_task()}

    elapsed, leftover = await scenario()

    assert elapsed < 1.5  # a silent upstream would hold it to the 2 s guard
    assert upstream.close_count == 1
    assert relay.stats.status == "disconnected"
    assert leftover == set()


async def test_a_disconnect_message_after_the_end_does_not_cancel_the_close_path() -> None:
    relay, upstream = make_relay([sse(chunk("a"), chunk(finish="stop")) + b"data: [DONE]\n\n"])
    finished: list[str] = []

    async def slow_observer(stats: StreamStats) -> None:
        await asyncio.sleep(0.05)  # the watcher sees http.disconnect while this runs
        finished.append(stats.status)

    relay.on_finish.append(slow_observer)

    async def scenario() -> None:
        client = Client()
        await relay.prime()
        await AsgiStreamer(relay, HEADERS)(SCOPE, client.receive, client.send)

    await scenario()
    assert finished == ["ok"]
    assert upstream.close_count == 1


async def test_a_shutdown_cancellation_at_the_same_time_as_a_disconnect_is_not_swallowed() -> None:
    relay, upstream = make_relay([sse(chunk("a")), ScriptedUpstream.HANG])

    async def scenario() -> bool:
        await relay.prime()
        task: asyncio.Task[None] | None = None

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(0.05)
            assert task is not None
            task.cancel()  # the server shutting down, just as the client leaves
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            return None

        task = asyncio.create_task(AsgiStreamer(relay, HEADERS)(SCOPE, receive, send))
        try:
            await asyncio.wait_for(task, 2)
        except asyncio.CancelledError:
            return True
        return False

    assert await scenario() is True
    assert upstream.close_count == 1


@pytest.mark.parametrize("finished", [True, False])
async def test_an_upstream_end_without_done_after_a_passed_through_read_is_judged_by_its_last_event(
    finished: bool,
) -> None:
    last = chunk(finish="stop") if finished else chunk("b")
    relay, _ = make_relay([sse(chunk("a"), last)])  # plain events, passed through; then the body ends

    frames = await relay_all(relay)

    assert frames[0] == sse(chunk("a"), last)
    if finished:  # a whole answer: the client still gets its [DONE]
        assert frames[1:] == [DONE_FRAME] and relay.stats.status == "ok"
    else:  # cut off between two events: the client must not take it for a whole answer
        assert frames[1].startswith(b'data: {"error":') and relay.stats.status == "error"
