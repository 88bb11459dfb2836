"""The Messages benchmark: the mock's Messages stream as the client checks it, and `--smoke` end to end.

The smoke run starts the real mock upstream and the real gateway on loopback and streams every path
(chat and Messages, pass-through and translated) through them; it takes a couple of seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.event_stream_client import StreamCheck, StreamTally, Wire
from bench.mock_upstream import CHAT_STREAM, MESSAGES_STREAM, StreamFormat

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the harness reads /proc")


def _unchunked(wire: StreamFormat, tokens: int) -> bytes:
    """A whole mock stream of `wire` as its body (the HTTP/1.1 chunk framing taken off)."""
    raw = wire.head + b"".join(wire.token(i, 1000 + i) for i in range(tokens)) + wire.tail(tokens, True)
    body, rest = b"", raw
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        length = int(size, 16)
        if length == 0:
            break
        body, rest = body + rest[:length], rest[length + 2 :]
    return body


@pytest.mark.parametrize(
    ("wire", "name", "events"),
    [(CHAT_STREAM, "chat", 3 + 3), (MESSAGES_STREAM, "messages", 3 + 6)],
)
def test_mock_stream_passes_the_check_at_every_split(wire: StreamFormat, name: Wire, events: int) -> None:
    body = _unchunked(wire, 3)
    for split in range(1, len(body)):
        check = StreamCheck(name, [])
        check.feed(body[:split], received_ns=2000)
        check.feed(body[split:], received_ns=2000)
        assert (check.tokens, check.events, check.done, check.error_events) == (3, events, True, 0), split
        assert check.delays_ns == [1000, 999, 998]


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


def test_smoke_run_streams_every_path_correctly(tmp_path: Path) -> None:
    out = tmp_path / "messages.json"
    completed = subprocess.run(
        [sys.executable, "bench/messages_bench.py", "--smoke", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    run = json.loads(out.read_text())
    paths = run["paths"]
    assert set(paths) == {"chat-chat", "messages-messages", "messages-chat", "chat-messages"}
    tokens = run["load"]["tokens"]
    # SSE events per stream: chat ends with a finish chunk and [DONE]; Messages opens with message_start,
    # content_block_start and ping and closes with content_block_stop, message_delta and message_stop; the
    # translated chat stream opens with a role chunk.
    expected = {"chat-chat": 2, "messages-messages": 6, "messages-chat": 6, "chat-messages": 3}
    for key, entry in paths.items():
        assert entry["failed_loads"] == 0, (key, entry.get("failures"))
        assert entry["events_per_stream"] == tokens + expected[key], key
        for result in entry["runs"]["long"]:
            assert result["streams"] == result["tokens"] / tokens == run["load"]["streams"]
    assert "| chat-messages / chat-chat |" in completed.stdout
