"""Streaming end to end over real sockets: simulator -> gateway (uvicorn) -> client.

Both streamers, every way of choosing one, timing (nothing waits for later events), framing of split
or coalesced upstream bytes, SSE variants, mid-stream failures and the usage chunk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.api.app import create_app
from gateway.api.state import app_state
from gateway.records import RequestRecord
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway, wait_until, write_config
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.streaming_support import (
    MESSAGES,
    StreamResult,
    normalised,
    stream,
    stream_body,
    streaming_routes_yaml,
)

pytestmark = pytest.mark.timeout(60)


class RecordingObserver:
    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    async def request_finished(self, record: RequestRecord) -> None:
        self.records.append(record)


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


@pytest.fixture
def gateway(
    simulator: ProviderSimulator, tmp_path: Path, observer: RecordingObserver
) -> Iterator[RunningGateway]:
    app = create_app(write_config(tmp_path, streaming_routes_yaml(simulator.base_url)), reload=False)
    app_state(app).observers.append(observer)
    with running_gateway(app=app) as running:
        yield running


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as http:
        yield http


# How the streamer is chosen: (name, path, model, extra body fields, headers, expected streamer).
CHOICES: list[tuple[str, str, str, dict[str, Any], dict[str, str], str]] = [
    ("route default", "/v1/chat/completions", "sim-model", {}, {}, "asgi"),
    ("route starlette", "/v1/chat/completions", "sim-starlette", {}, {}, "starlette"),
    ("body true", "/v1/chat/completions", "sim-starlette", {"x_use_asgi_streaming": True}, {}, "asgi"),
    ("body false", "/v1/chat/completions", "sim-model", {"x_use_asgi_streaming": False}, {}, "starlette"),
    ("header true", "/v1/chat/completions", "sim-starlette", {}, {"x-use-asgi-streaming": "true"}, "asgi"),
    ("header false", "/v1/chat/completions", "sim-model", {}, {"x-use-asgi-streaming": "false"}, "starlette"),
    (
        "body beats header",
        "/v1/chat/completions",
        "sim-model",
        {"x_use_asgi_streaming": False},
        {"x-use-asgi-streaming": "true"},
        "starlette",
    ),
    ("asgi endpoint", "/v1/chat/completions/asgi", "sim-starlette", {}, {}, "asgi"),
    (
        "asgi endpoint ignores overrides",
        "/v1/chat/completions/asgi",
        "sim-model",
        {"x_use_asgi_streaming": False},
        {"x-use-asgi-streaming": "false"},
        "asgi",
    ),
]


def test_every_way_of_choosing_a_streamer_gives_the_same_events(
    simulator: ProviderSimulator, client: httpx.Client
) -> None:
    simulator.default = Behaviour(tokens=8, token_delay=0.005)
    results: dict[str, StreamResult] = {}
    for name, path, model, fields, headers, expected in CHOICES:
        result = stream(client, path, stream_body(model, **fields), headers)
        assert result.status == 200, (name, result.body)
        assert result.streamer == expected, name
        results[name] = result

    reference = normalised(results["route default"].body)
    assert reference.endswith(b"data: [DONE]\n\n")
    assert len(results["route default"].events) == 1 + 8 + 1 + 1  # role, tokens, finish, [DONE]
    for name, result in results.items():
        assert normalised(result.body) == reference, name

    upstream = simulator.chat_requests
    assert len(upstream) == len(CHOICES)
    for request in upstream:
        assert "x_use_asgi_streaming" not in request.json  # the body field never reaches upstream
        assert "x-use-asgi-streaming" not in request.headers
        assert request.json["model"] == "sim-model"


def test_a_bad_override_header_is_a_client_error(client: httpx.Client) -> None:
    answer = client.post(
        "/v1/chat/completions", json=stream_body(), headers={"x-use-asgi-streaming": "maybe"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "x-use-asgi-streaming"


@pytest.mark.parametrize("model", ["sim-model", "sim-starlette"])
def test_the_first_event_reaches_the_client_before_upstream_sends_the_second(
    simulator: ProviderSimulator, client: httpx.Client, model: str
) -> None:
    simulator.enqueue(Behaviour(tokens=3, pause_after=1, pause=0.5))
    result = stream(client, "/v1/chat/completions", stream_body(model))

    arrived = result.arrival_times()
    sent = simulator.chat_requests[-1].sent_at
    first, second = result.events[0].json(), result.events[1].json()
    assert first["x_sent_at"] == sent[0] and second["x_sent_at"] == sent[1]
    # Event 1 was in the client's hands at most 100 ms after the simulator wrote it, and at least 400 ms
    # before the simulator even wrote event 2.
    assert arrived[0] - sent[0] < 0.1, arrived[0] - sent[0]
    assert sent[1] - arrived[0] > 0.4, sent[1] - arrived[0]
    assert arrived[1] >= sent[1]


@pytest.mark.parametrize("model", ["sim-model", "sim-starlette"])
@pytest.mark.parametrize("split", [1, 2, 7, 64])
def test_upstream_split_anywhere_reaches_the_client_as_whole_events(
    simulator: ProviderSimulator, client: httpx.Client, model: str, split: int
) -> None:
    simulator.default = Behaviour(tokens=4, stamp=False)
    reference = stream(client, "/v1/chat/completions", stream_body(model))
    simulator.enqueue(Behaviour(tokens=4, stamp=False, split=split, split_delay=0.001))
    result = stream(client, "/v1/chat/completions", stream_body(model))

    assert normalised(result.body) == normalised(reference.body)
    assert len(result.pieces) >= 2
    for _, piece in result.pieces:
        assert piece.endswith(b"\n\n"), piece  # never a piece of an event: no re-chunking, no 1-byte writes
        assert piece.startswith(b"data: ")


@pytest.mark.parametrize("model", ["sim-model", "sim-starlette"])
def test_events_arriving_together_are_forwarded_without_waiting_for_more(
    simulator: ProviderSimulator, client: httpx.Client, model: str
) -> None:
    # Three writes: events 1-3, (pause) 4-6, (pause) 7-9 (finish, usage, [DONE]; the gateway asked for
    # usage itself, so the client does not get the usage chunk).
    simulator.enqueue(Behaviour(tokens=5, coalesce=3, token_delay=0.4))
    result = stream(client, "/v1/chat/completions", stream_body(model))

    sent = simulator.chat_requests[-1].sent_at
    arrived = result.arrival_times()
    assert (len(arrived), len(sent)) == (8, 9)
    for batch_end, next_batch in ((3, 3), (6, 6)):
        for index in range(batch_end):
            assert sent[next_batch] - arrived[index] > 0.3, (index, sent[next_batch] - arrived[index])


@pytest.mark.parametrize(
    "variant",
    [
        {"crlf": True},
        {"ping_every": 1},
        {"multiline_data": True},
        {"crlf": True, "ping_every": 2, "multiline_data": True, "split": 3},
    ],
    ids=["crlf", "comments", "multiline", "all-split"],
)
@pytest.mark.parametrize("model", ["sim-model", "sim-starlette"])
def test_sse_variants_reach_the_client_as_the_same_events(
    simulator: ProviderSimulator, client: httpx.Client, model: str, variant: dict[str, Any]
) -> None:
    simulator.default = Behaviour(tokens=4, stamp=False)
    reference = stream(client, "/v1/chat/completions", stream_body(model))
    simulator.enqueue(Behaviour(tokens=4, stamp=False, **variant))
    result = stream(client, "/v1/chat/completions", stream_body(model))

    assert [_content(event.json()) for event in result.events[:-1]] == [
        _content(event.json()) for event in reference.events[:-1]
    ]
    assert result.events[-1].is_done
    assert b"\r" not in result.body and b": ping" not in result.body


def _content(chunk: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in chunk.items() if key not in ("id", "created")}


FAILURES = [
    ("dropped", Behaviour(tokens=6, drop_after=3), "sim-model", "upstream_read_error"),
    ("reset", Behaviour(tokens=6, drop_after=3, reset=True), "sim-model", "upstream_read_error"),
    ("malformed", Behaviour(tokens=6, malformed_after=3), "sim-model", "upstream_protocol_error"),
    ("read timeout", Behaviour(tokens=6, hang_after=3), "sim-short", "upstream_timeout"),
    # A connection-delimited body cut off between two events: a normal end for HTTP, not for the answer.
    ("cut off", Behaviour(tokens=6, drop_after=3, chunked=False), "sim-model", "upstream_protocol_error"),
]


@pytest.mark.parametrize(("name", "behaviour", "model", "code"), FAILURES, ids=[f[0] for f in FAILURES])
@pytest.mark.parametrize("asgi", [True, False], ids=["asgi", "starlette"])
def test_a_mid_stream_failure_ends_the_stream_with_one_error_event(
    simulator: ProviderSimulator,
    client: httpx.Client,
    observer: RecordingObserver,
    caplog: pytest.LogCaptureFixture,
    name: str,
    behaviour: Behaviour,
    model: str,
    code: str,
    asgi: bool,
) -> None:
    simulator.enqueue(behaviour)
    with caplog.at_level(logging.WARNING, logger="gateway.stream"):
        result = stream(client, "/v1/chat/completions", stream_body(model, x_use_asgi_streaming=asgi))

    assert result.status == 200
    events = result.events
    assert events[-1].json()["error"]["code"] == code
    assert [event.json().get("choices") is not None for event in events[:-1]] == [True] * 3
    assert not any(event.is_done for event in events)
    error = events[-1].json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    request_id = result.headers["x-request-id"]
    assert any(request_id in message and "mid-stream" in message for message in caplog.messages)
    # Observers run once the last byte went out, possibly just after the client has read it.
    wait_until(lambda: len(observer.records) == 1, message="no request record")
    assert [record.stream_status for record in observer.records] == ["error"]


@pytest.mark.parametrize("asgi", ["true", "false"], ids=["asgi", "starlette"])
def test_the_openai_sdk_raises_api_error_on_a_mid_stream_failure(
    simulator: ProviderSimulator, gateway: RunningGateway, asgi: str
) -> None:
    simulator.enqueue(Behaviour(tokens=6, drop_after=3))
    sdk = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="unused", max_retries=0, timeout=10)
    received: list[str] = []
    with sdk:
        chunks = sdk.chat.completions.create(
            model="sim-model", messages=MESSAGES, stream=True, extra_headers={"x-use-asgi-streaming": asgi}
        )
        with pytest.raises(openai.APIError, match="connection to provider 'sim' failed"):
            for chunk in chunks:
                received.append(chunk.choices[0].delta.content or "")
    assert received == ["", "word0 ", "word1 "]


def test_a_complete_stream_without_done_gets_one_from_the_gateway(
    simulator: ProviderSimulator, client: httpx.Client
) -> None:
    simulator.enqueue(Behaviour(tokens=2, done=False), Behaviour(tokens=2, done=False, chunked=False))
    for _ in range(2):
        events = stream(client, "/v1/chat/completions", stream_body()).events
        assert events[-2].json()["choices"][0]["finish_reason"] == "stop"
        assert events[-1].is_done


def test_usage_is_asked_upstream_recorded_and_dropped_when_the_client_did_not_ask(
    simulator: ProviderSimulator, client: httpx.Client, observer: RecordingObserver
) -> None:
    simulator.default = Behaviour(tokens=3)
    silent = stream(client, "/v1/chat/completions", stream_body())
    asked = stream(client, "/v1/chat/completions", stream_body(stream_options={"include_usage": True}))

    upstream = simulator.chat_requests
    assert [request.json["stream_options"] for request in upstream] == [{"include_usage": True}] * 2
    usage = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    wait_until(lambda: len(observer.records) == 2, message="no request records")
    assert [record.usage for record in observer.records] == [usage, usage]
    silent_chunks = [event.json() for event in silent.events[:-1]]
    asked_chunks = [event.json() for event in asked.events[:-1]]
    assert all(chunk["choices"] for chunk in silent_chunks)  # no usage-only chunk
    assert asked_chunks[-1]["choices"] == [] and asked_chunks[-1]["usage"] == usage
    assert len(asked_chunks) == len(silent_chunks) + 1


def test_a_provider_without_stream_usage_is_not_asked_for_it(
    simulator: ProviderSimulator, client: httpx.Client, observer: RecordingObserver
) -> None:
    simulator.default = Behaviour(tokens=2)
    silent = stream(client, "/v1/chat/completions", stream_body("sim-no-usage"))
    asked = stream(
        client, "/v1/chat/completions", stream_body("sim-no-usage", stream_options={"include_usage": True})
    )

    upstream = simulator.chat_requests
    assert "stream_options" not in upstream[0].json
    assert upstream[1].json["stream_options"] == {"include_usage": True}  # the client's own, passed on
    wait_until(lambda: len(observer.records) == 2, message="no request records")
    assert [record.usage is None for record in observer.records] == [True, False]
    assert all(event.json()["choices"] for event in silent.events[:-1])
    assert asked.events[-2].json()["choices"] == []


def test_sequential_streams_reuse_one_upstream_connection(
    simulator: ProviderSimulator, client: httpx.Client
) -> None:
    """After `[DONE]` the relay reads the rest of the upstream body: the connection goes back to the pool."""
    for model in ("sim-model", "sim-starlette", "sim-model"):
        assert stream(client, "/v1/chat/completions", stream_body(model)).events[-1].is_done
    assert {request.connection_id for request in simulator.chat_requests} == {1}
    # The simulator marks a request completed after its last write, which the client may read first.
    wait_until(
        lambda: [request.outcome for request in simulator.chat_requests] == ["completed"] * 3,
        message=f"outcomes: {[request.outcome for request in simulator.chat_requests]}",
    )


def test_stream_summary_and_debug_lines(
    simulator: ProviderSimulator, client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    simulator.enqueue(Behaviour(tokens=2))

    def lines() -> list[str]:
        return [record.getMessage() for record in caplog.records if request_id in record.getMessage()]

    with caplog.at_level(logging.DEBUG, logger="gateway.stream"):
        result = stream(client, "/v1/chat/completions", stream_body())
        request_id = result.headers["x-request-id"]
        # The summary is written when the relay closes, possibly just after the client read the last byte.
        wait_until(lambda: any(" status=" in line for line in lines()), message="no summary line")

    # A line per piece handed to the streamer (one upstream read's events), counting its events.
    piece_lines = [line for line in lines() if " piece=" in line]
    assert piece_lines
    events = sum(int(line.split(" events=")[1].split()[0]) for line in piece_lines)
    assert events == len(result.events) == 5  # role, 2 tokens, finish, [DONE]
    for line in piece_lines:
        for field_name in ("size=", "interval=", "at=", "send="):
            assert field_name in line, line
    (summary,) = [line for line in lines() if " status=" in line]
    for field_name in (
        "provider=sim",
        "model=sim-model",
        "status=ok",
        "connect=",
        "first_chunk=",
        "chunks=4",
        f"bytes={len(result.body)}",
        "total=",
        "avg_interval=",
    ):
        assert field_name in summary, summary


def test_non_streaming_requests_are_unaffected(client: httpx.Client) -> None:
    answer = client.post("/v1/chat/completions", json={"model": "sim-model", "messages": MESSAGES})
    assert answer.status_code == 200
    assert "x-gateway-streamer" not in answer.headers
    assert json.loads(answer.text)["object"] == "chat.completion"
