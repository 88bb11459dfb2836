"""The incremental SSE parser: table-driven cases, then random splits checked against a whole-stream parse."""

from __future__ import annotations

import random
import re

import pytest

from gateway.streaming.sse import DONE_FRAME, SSEParser, frame

CASES: list[tuple[str, bytes, list[bytes]]] = [
    ("one event", b'data: {"a":1}\n\n', [b'{"a":1}']),
    ("two events in one read", b"data: 1\n\ndata: 2\n\n", [b"1", b"2"]),
    ("crlf endings", b"data: 1\r\n\r\ndata: 2\r\n\r\n", [b"1", b"2"]),
    ("lone cr endings", b"data: 1\r\rdata: 2\r\r", [b"1"]),  # the last "\r" may still become "\r\n"
    ("mixed endings", b"data: 1\r\n\ndata: 2\n\r\n", [b"1", b"2"]),
    ("comment only", b": keep-alive\n\n", []),
    ("comment before data", b": ping\ndata: x\n\n", [b"x"]),
    ("multi-line data", b'data: {\ndata:  "a": 1\ndata: }\n\n', [b'{\n "a": 1\n}']),
    ("no space after colon", b"data:x\n\n", [b"x"]),
    ("two spaces keep one", b"data:  x\n\n", [b" x"]),
    ("event, id and retry ignored", b"event: chunk\nid: 7\nretry: 10\ndata: x\n\n", [b"x"]),
    ("empty data is not an event", b"data:\n\ndata: \n\n", []),
    ("data without colon is empty", b"data\n\n", []),
    ("event without data", b"event: ping\n\n", []),
    ("unterminated event waits", b"data: 1\n", []),
    ("done", b"data: [DONE]\n\n", [b"[DONE]"]),
    ("byte-order mark", b"\xef\xbb\xbfdata: 1\n\n", [b"1"]),
    ("blank lines between events", b"\n\n\ndata: 1\n\n\n\ndata: 2\n\n", [b"1", b"2"]),
]


@pytest.mark.parametrize(("name", "stream", "expected"), CASES, ids=[case[0] for case in CASES])
def test_parses_whole_stream(name: str, stream: bytes, expected: list[bytes]) -> None:
    assert SSEParser().feed(stream) == expected


@pytest.mark.parametrize(("name", "stream", "expected"), CASES, ids=[case[0] for case in CASES])
def test_one_byte_per_read_gives_the_same_events(name: str, stream: bytes, expected: list[bytes]) -> None:
    parser = SSEParser()
    events = [event for index in range(len(stream)) for event in parser.feed(stream[index : index + 1])]
    assert events == expected


def test_an_event_is_returned_by_the_read_that_completes_it() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\n") == []
    assert parser.pending == b"data: 1\n"
    assert parser.feed(b"\ndata: 2") == [b"1"]
    assert parser.feed(b"\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\n") == [b"2"]
    assert parser.pending == b""


def test_cr_split_from_its_lf_is_one_line_ending() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\ndata: 2\r\n\r\n") == [b"1", b"2"]


def test_flush_returns_an_unterminated_final_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: 1\n\ndata: [DONE]\n") == [b"1"]
    assert parser.flush() == [b"[DONE]"]
    assert parser.flush() == []


def test_flush_of_comment_gives_nothing() -> None:
    parser = SSEParser()
    parser.feed(b": ping\r")
    assert parser.flush() == []


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"a":1}', b'data: {"a":1}\n\n'),
        (b"{\n}", b"data: {\ndata: }\n\n"),
        (b"[DONE]", DONE_FRAME),
    ],
)
def test_frame(payload: bytes, expected: bytes) -> None:
    assert frame(payload) == expected
    assert SSEParser().feed(frame(payload)) == [payload]


def reference_events(stream: bytes) -> list[bytes]:
    """A plain reading of the SSE specification over the whole stream at once (no incremental state)."""
    if stream.startswith(b"\xef\xbb\xbf"):
        stream = stream[3:]
    events: list[bytes] = []
    data: list[bytes] = []
    lines = re.split(rb"\r\n|\r|\n", stream)
    for line in lines[:-1]:  # the last piece has no line ending yet
        if line == b"":
            payload = b"\n".join(data)
            if data and payload:
                events.append(payload)
            data = []
        elif line.startswith(b":"):
            continue
        else:
            name, _, value = line.partition(b":")
            if name == b"data":
                data.append(value[1:] if value.startswith(b" ") else value)
    return events


def random_stream(rng: random.Random) -> bytes:
    parts: list[bytes] = []
    for _ in range(rng.randint(1, 12)):
        eol = rng.choice([b"\n", b"\r\n", b"\n", b"\r\n", b"\r"])
        kind = rng.random()
        if kind < 0.15:
            parts.append(b": ping" + eol + eol)
        elif kind < 0.3:
            lines = [b"data: {" + str(rng.randint(0, 999)).encode(), b'data:  "k": 1', b"data: }"]
            parts.append(eol.join(lines) + eol + eol)
        elif kind < 0.4:
            parts.append(b"event: x" + eol + b"id: 1" + eol + b"data: [DONE]" + eol + eol)
        else:
            body = bytes(rng.choice(b'abcxyz{}":, ') for _ in range(rng.randint(1, 40)))
            parts.append(b"data: " + body + eol + eol)
    bom = b"\xef\xbb\xbf" if rng.random() < 0.1 else b""
    return bom + b"".join(parts)


def random_splits(stream: bytes, rng: random.Random) -> list[bytes]:
    mode = rng.random()
    if mode < 0.2:
        return [stream[index : index + 1] for index in range(len(stream))]
    cuts = sorted(rng.sample(range(1, len(stream)), k=min(len(stream) - 1, rng.randint(0, 20))))
    return [stream[start:end] for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def test_random_splits_give_the_events_of_the_whole_stream() -> None:
    rng = random.Random(20240611)  # fixed seed: a failure is reproducible
    for _ in range(2000):
        stream = random_stream(rng)
        expected = reference_events(stream)
        parser = SSEParser()
        events = [event for piece in random_splits(stream, rng) for event in parser.feed(piece)]
        # A stream ending in a lone "\r" keeps its last event until more bytes (or the end) arrive.
        assert events + parser.flush() == expected, stream
        whole = SSEParser()
        assert whole.feed(stream) + whole.flush() == expected, stream


def test_one_byte_reads_of_a_long_event_stay_linear() -> None:
    """A 200 KB event fed one byte at a time: each read scans only the new byte (seconds if quadratic)."""
    payload = b"{" + b"x" * 200_000 + b"}"
    stream = b"data: " + payload + b"\n\n"
    parser = SSEParser()
    events: list[bytes] = []
    for index in range(len(stream)):
        events.extend(parser.feed(stream[index : index + 1]))
    assert events == [payload]
