"""The stream benches (Messages and Responses): the mock's streams as the client checks them, the checks
that turn a broken Responses stream into a failure, and each bench's `--smoke` end to end.

The smoke runs start the real mock upstream and the real gateway on loopback and stream every path
(pass-through and translated) through them; each takes a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from bench.event_stream_client import StreamCheck, StreamTally, Wire
from bench.mock_streams import CHAT_STREAM, MESSAGES_STREAM, RESPONSES_STREAM, StreamFormat

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the harness reads /proc")


def _unchunked(wire: StreamFormat, tokens: int) -> bytes:
    """A whole mock stream of `wire` as its body (the HTTP/1.1 chunk framing taken off)."""
    stamps = [1000 + i for i in range(tokens)]
    raw = wire.head + b"".join(wire.token(i, stamp) for i, stamp in enumerate(stamps))
    raw += wire.tail(stamps, True)
    body, rest = b"", raw
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            break
        body, rest = body + rest[:length], rest[length + 2 :]
    return body


def _checked(wire: Wire, body: bytes) -> StreamCheck:
    check = StreamCheck(wire, [])
    check.feed(body, received_ns=2000)
    return check


@pytest.mark.parametrize(
    ("wire", "name", "events"),
    [
        (CHAT_STREAM, "chat", 3 + 3),
        (MESSAGES_STREAM, "messages", 3 + 6),
        (RESPONSES_STREAM, "responses", 3 + 8),
    ],
)
def test_mock_stream_passes_the_check_at_every_split(wire: StreamFormat, name: Wire, events: int) -> None:
    body = _unchunked(wire, 3)
    for split in range(1, len(body)):
        check = StreamCheck(name, [])
        check.feed(body[:split], received_ns=2000)
        check.feed(body[split:], received_ns=2000)
        assert (check.tokens, check.events, check.done, check.error_events) == (3, events, True, 0), split
        assert check.broken == "", split
        assert check.delays_ns == [1000, 999, 998]


def _responses_events(tokens: int) -> list[bytes]:
    return _unchunked(RESPONSES_STREAM, tokens).split(b"\n\n")[:-1]


def test_mock_responses_stream_closes_with_the_whole_text_and_usage() -> None:
    events = [event.partition(b"\ndata: ")[2] for event in _responses_events(2)]
    done, completed = orjson.loads(events[-4]), orjson.loads(events[-1])
    assert done["type"] == "response.output_text.done" and done["text"] == "t1000 t1001 "
    assert completed["response"]["output"][0]["content"][0]["text"] == "t1000 t1001 "
    assert completed["response"]["usage"]["output_tokens"] == 2


def _renumbered(events: list[bytes]) -> bytes:
    """The events with their sequence numbers made consecutive again, framed as a body."""
    out = []
    for number, event in enumerate(events):
        name, _, data = event.partition(b"\ndata: ")
        payload = orjson.loads(data)
        payload["sequence_number"] = number
        out.append(name + b"\ndata: " + orjson.dumps(payload) + b"\n\n")
    return b"".join(out)


def _without_usage(event: bytes) -> bytes:
    name, _, data = event.partition(b"\ndata: ")
    payload = orjson.loads(data)
    del payload["response"]["usage"]
    return name + b"\ndata: " + orjson.dumps(payload)


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        (lambda events: b"\n\n".join(events[:4] + events[5:]) + b"\n\n", "event 4 "),  # a delta lost
        (lambda events: _renumbered(events[1:]), "the stream opened with response.in_progress"),
        (lambda events: _renumbered([*events[:-1], _without_usage(events[-1])]), "without usage"),
        (lambda events: _renumbered([*events, events[-1]]), "response.completed after response.completed"),
        (
            lambda events: _renumbered(
                [*events[:-1], events[-1].replace(b'"type":"response.completed"', b'"type":"x"')]
            ),
            "its type is not its name",
        ),
    ],
)
def test_a_broken_responses_stream_fails_its_check(broken: object, problem: str) -> None:
    assert callable(broken)
    check = _checked("responses", broken(_responses_events(2)))
    tally = StreamTally(tokens_per_stream=check.tokens)
    tally.record(200, check)
    assert tally.failed == 1 and problem in tally.failures[0], tally.failures


def test_a_failed_responses_stream_counts_its_error_event() -> None:
    events = _responses_events(1)
    failed = events[-1].replace(b"response.completed", b"response.failed")
    check = _checked("responses", _renumbered([*events[:-1], failed]))
    assert (check.error_events, check.done, check.broken) == (1, False, "")


def test_tally_counts_a_short_or_errored_stream_as_failed() -> None:
    tally = StreamTally(tokens_per_stream=2)
    short = StreamCheck("messages", [], tokens=1, done=True)
    errored = StreamCheck("chat", [], tokens=2, done=True, error_events=1)
    tally.record(200, short)
    tally.record(200, errored)
    tally.record(502, StreamCheck("chat", []))
    tally.record(200, StreamCheck("chat", [], tokens=2, done=True, events=4))
    assert (tally.streams, tally.failed, tally.events) == (1, 3, 4)
    assert tally.failures == ["1 of 2 token events", "1 error event(s)", "status 502"]


# SSE events per stream beyond the token events: chat ends with a finish chunk and [DONE]; Messages opens
# with message_start, content_block_start and ping and closes with content_block_stop, message_delta and
# message_stop; the translated chat stream opens with a role chunk; Responses opens with response.created,
# response.in_progress, output_item.added and content_part.added and closes with output_text.done,
# content_part.done, output_item.done and response.completed, translated or not.
SMOKE = {
    "messages": (
        {"chat-chat": 2, "messages-messages": 6, "messages-chat": 6, "chat-messages": 3},
        "| chat-messages / chat-chat |",
    ),
    "responses": (
        {"chat-chat": 2, "responses-responses": 8, "responses-chat": 8},
        "| responses-chat / responses-responses |",
    ),
}


@pytest.mark.parametrize("bench", sorted(SMOKE))
def test_smoke_run_streams_every_path_correctly(tmp_path: Path, bench: str) -> None:
    expected, ratio_row = SMOKE[bench]
    out = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, "bench/event_bench.py", bench, "--smoke", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    run = json.loads(out.read_text())
    paths = run["paths"]
    assert set(paths) == set(expected)
    tokens = run["load"]["tokens"]
    for key, entry in paths.items():
        assert entry["failed_loads"] == 0, (key, entry.get("failures"))
        assert entry["events_per_stream"] == tokens + expected[key], key
        for result in entry["runs"]["long"]:
            assert result["failed"] == 0, (key, result["failures"])
            assert result["streams"] == result["tokens"] / tokens == run["load"]["streams"]
    assert ratio_row in completed.stdout
