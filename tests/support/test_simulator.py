"""The provider simulator, tested over real loopback sockets with httpx (it is the ground truth of the
end-to-end tests, so its answers are checked against OpenAI's schemas and its faults byte by byte)."""

from __future__ import annotations

import itertools
import math
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.harness import CLIENT_TIMEOUT
from tests.support.openai_schemas import (
    validate_chat_chunk,
    validate_chat_completion,
    validate_error,
    validate_model_list,
)
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.simulator_behaviour import InvalidBehaviour
from tests.support.sse_reader import iter_sse, parse_sse

pytestmark = pytest.mark.timeout(30)

MESSAGES = [{"role": "user", "content": "say three words"}]


def chat(stream: bool = False, **extra: object) -> dict:
    return {"model": "sim-model", "messages": MESSAGES, "stream": stream, **extra}


@pytest.fixture
def client(simulator: ProviderSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator.base_url, timeout=CLIENT_TIMEOUT) as client:
        yield client


def stream_text(client: httpx.Client, body: dict) -> tuple[httpx.Response, str]:
    with client.stream("POST", "/chat/completions", json=body) as response:
        text = response.read().decode()
    return response, text


def data_events(text: str) -> list[str]:
    return [event.data for event in parse_sse(text)[0]]


# Well-formed answers.


def test_completion_matches_openai_schema_and_request_is_recorded(
    simulator: ProviderSimulator, client: httpx.Client
) -> None:
    response = client.post("/chat/completions", json=chat(), headers={"Authorization": "Bearer k"})

    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))
    body = response.json()
    validate_chat_completion(body)
    assert body["choices"][0]["message"]["content"] == "word0 word1 word2 word3 word4 "
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    [recorded] = simulator.requests
    assert (recorded.method, recorded.path, recorded.json) == ("POST", "/v1/chat/completions", chat())
    assert recorded.headers["authorization"] == "Bearer k"
    # The client can hold the answer a moment before the simulator marks the request done.
    simulator.wait_for(lambda: simulator.requests[0].outcome == "completed", timeout=2)


def test_stream_is_role_then_tokens_then_finish_then_done(client: httpx.Client) -> None:
    response, text = stream_text(client, chat(stream=True, x_sim={"tokens": 3}))

    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    *chunks, done = parse_sse(text)[0]
    assert done.is_done
    payloads = [chunk.json() for chunk in chunks]
    for payload in payloads:
        validate_chat_chunk(payload)
        assert isinstance(payload["x_sent_at"], float)
        assert "usage" not in payload
    deltas = [payload["choices"][0]["delta"] for payload in payloads]
    assert deltas == [{"role": "assistant", "content": ""}, *({"content": f"word{i} "} for i in range(3)), {}]
    assert [payload["choices"][0]["finish_reason"] for payload in payloads] == [None] * 4 + ["stop"]


def test_stream_with_include_usage_ends_with_a_usage_only_chunk(client: httpx.Client) -> None:
    _, text = stream_text(
        client, chat(stream=True, stream_options={"include_usage": True}, x_sim={"tokens": 2})
    )

    *chunks, usage_chunk, done = parse_sse(text)[0]
    assert done.is_done
    assert all(chunk.json()["usage"] is None for chunk in chunks)
    usage = usage_chunk.json()
    validate_chat_chunk(usage)
    assert usage["choices"] == []
    assert usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_models_and_paths_with_or_without_v1(simulator: ProviderSimulator) -> None:
    with httpx.Client(base_url=simulator.root_url, timeout=CLIENT_TIMEOUT) as client:
        listed = client.get("/models")
        answered = client.post("/chat/completions", json=chat())
        missing = client.get("/v1/nothing")

    validate_model_list(listed.json())
    assert [model["id"] for model in listed.json()["data"]] == ["sim-model"]
    validate_chat_completion(answered.json())
    assert missing.status_code == 404
    validate_error(missing.json())


# Scripting: the queue, x_sim, errors.


def test_queue_is_consumed_one_per_chat_request_then_default(
    simulator: ProviderSimulator, client: httpx.Client
) -> None:
    simulator.enqueue(Behaviour(status=503), Behaviour(status=429, headers={"Retry-After": "2"}))
    simulator.enqueue_models(Behaviour(status=500))

    assert client.get("/models").status_code == 500  # the models queue is separate
    first, second, third = (client.post("/chat/completions", json=chat()) for _ in range(3))

    assert (first.status_code, second.status_code, third.status_code) == (503, 429, 200)
    assert second.headers["retry-after"] == "2"
    for error in (first.json(), second.json()):
        validate_error(error)
    assert second.json()["error"]["code"] == "rate_limit_exceeded"
    assert simulator.queued == 0


def test_models_are_scripted_apart_from_chat(simulator: ProviderSimulator, client: httpx.Client) -> None:
    simulator.default = Behaviour(status=503)
    assert client.get("/models").status_code == 200
    simulator.models_default = Behaviour(status=500)
    assert client.get("/models").status_code == 500
    assert client.post("/chat/completions", json=chat()).status_code == 503


def test_stream_request_with_error_status_gets_a_json_error(client: httpx.Client) -> None:
    response, text = stream_text(client, chat(stream=True, x_sim={"status": 500, "error_message": "boom"}))

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert httpx.Response(500, content=text).json()["error"]["message"] == "boom"


def test_x_sim_overrides_the_queued_behaviour(simulator: ProviderSimulator, client: httpx.Client) -> None:
    simulator.enqueue(Behaviour(status=503, tokens=1))

    response = client.post("/chat/completions", json=chat(x_sim={"status": 200, "text": "hello there"}))

    assert response.json()["choices"][0]["message"]["content"] == "hello there"
    assert simulator.requests[0].behaviour == Behaviour(tokens=1, text="hello there")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nope": 1}, "unknown field 'nope'"),
        ({"tokens": "3"}, "tokens must be a non-negative integer"),
        ({"token_delay": -1}, "token_delay must be a non-negative number"),
        ({"hang": 1}, "hang must be a boolean"),
        ({"headers": {"a": 1}}, "headers must be an object of strings"),
        ({"split": 0}, "split must be at least 1 byte"),
        ({"status": 42}, "status 42 is not an HTTP status"),
        ([1], "x_sim must be an object"),
    ],
)
def test_invalid_x_sim_is_a_400_naming_the_problem(
    client: httpx.Client, overrides: object, message: str
) -> None:
    response = client.post("/chat/completions", json=chat(x_sim=overrides))

    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_behaviour_overrides_accept_json_types() -> None:
    changed = Behaviour().with_overrides({"token_delay": 1, "drop_after": None, "usage": True, "text": "x"})
    assert changed == Behaviour(token_delay=1.0, usage=True, text="x")
    with pytest.raises(InvalidBehaviour):
        Behaviour(coalesce=0)


def test_bad_requests_are_answered_not_crashed_on(simulator: ProviderSimulator, client: httpx.Client) -> None:
    not_json = client.post(
        "/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
    )
    wrong_method = client.get("/chat/completions")
    simulator.api_key = "right"
    no_key = client.post("/chat/completions", json=chat())
    with_key = client.post("/chat/completions", json=chat(), headers={"Authorization": "Bearer right"})

    assert [r.status_code for r in (not_json, wrong_method, no_key, with_key)] == [400, 405, 401, 200]
    validate_error(no_key.json())


def test_raw_body_replaces_the_json(client: httpx.Client) -> None:
    response = client.post(
        "/chat/completions", json=chat(x_sim={"body": "<html>bad gateway</html>", "status": 502})
    )

    assert (response.status_code, response.text) == (502, "<html>bad gateway</html>")


def test_chunked_request_body_is_read(simulator: ProviderSimulator, client: httpx.Client) -> None:
    parts = [b'{"model": "sim-model", ', b'"messages": []}']
    response = client.post("/chat/completions", content=iter(parts))

    assert response.status_code == 200
    assert simulator.requests[0].headers["transfer-encoding"] == "chunked"
    assert simulator.requests[0].json == {"model": "sim-model", "messages": []}


# Timing.


def test_head_delay_holds_back_the_response_head(client: httpx.Client) -> None:
    started = time.monotonic()
    response = client.post("/chat/completions", json=chat(x_sim={"head_delay": 0.3}))

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_token_delay_spaces_events_and_stamps_say_when(
    simulator: ProviderSimulator, client: httpx.Client
) -> None:
    with client.stream(
        "POST", "/chat/completions", json=chat(stream=True, x_sim={"tokens": 3, "token_delay": 0.1})
    ) as r:
        events = list(iter_sse(r))

    stamps = [event.json()["x_sent_at"] for event in events[:-1]]
    assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(stamps))
    # Each event arrives right after it was stamped (loopback, no buffering on the way).
    assert all(0 <= event.received_at - stamp < 0.09 for event, stamp in zip(events, stamps, strict=False))
    assert simulator.requests[0].sent_at[:-1] == stamps


def test_pause_after_event_n(client: httpx.Client) -> None:
    with client.stream(
        "POST", "/chat/completions", json=chat(stream=True, x_sim={"pause_after": 2, "pause": 0.3})
    ) as r:
        arrivals = [event.received_at for event in iter_sse(r)]

    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert gaps[1] >= 0.29
    assert max(gaps[:1] + gaps[2:]) < 0.2


# Framing.


def test_split_one_byte_writes_reach_the_client_one_byte_at_a_time(client: httpx.Client) -> None:
    with client.stream(
        "POST", "/chat/completions", json=chat(stream=True, x_sim={"split": 1, "tokens": 2})
    ) as r:
        pieces = list(r.iter_raw())

    assert {len(piece) for piece in pieces} == {1}
    text = b"".join(pieces).decode()
    assert len(data_events(text)) == 5
    assert all(event.json() for event in parse_sse(text)[0][:-1])


def test_split_applies_to_json_bodies(client: httpx.Client) -> None:
    response = client.post("/chat/completions", json=chat(x_sim={"split": 7, "split_delay": 0.001}))

    validate_chat_completion(response.json())


def test_coalesce_writes_several_events_at_once(client: httpx.Client) -> None:
    with client.stream(
        "POST", "/chat/completions", json=chat(stream=True, x_sim={"coalesce": 3, "tokens": 4})
    ) as r:
        pieces = [piece.decode() for piece in r.iter_raw()]

    events = 7  # role, 4 tokens, finish, [DONE]
    assert len(pieces) == math.ceil(events / 3)
    assert [len(data_events(piece)) for piece in pieces] == [3, 3, 1]


def test_crlf_pings_and_multiline_data(client: httpx.Client) -> None:
    overrides = {"crlf": True, "ping_every": 2, "multiline_data": True, "tokens": 2}
    _, text = stream_text(client, chat(stream=True, x_sim=overrides))

    assert "\n" not in text.replace("\r\n", "")
    events, comments = parse_sse(text)
    assert comments == ["ping"] * 3  # before events 1, 3 and 5
    assert text.count("data: ") > len(events)  # JSON spread over several data lines
    assert [event.json()["choices"][0]["delta"].get("content") for event in events[1:3]] == [
        "word0 ",
        "word1 ",
    ]


def test_close_delimited_stream(simulator: ProviderSimulator, client: httpx.Client) -> None:
    response, text = stream_text(client, chat(stream=True, x_sim={"chunked": False, "tokens": 1}))

    assert "transfer-encoding" not in response.headers
    assert response.headers["connection"] == "close"
    assert data_events(text)[-1] == "[DONE]"
    simulator.wait_for(lambda: simulator.open_connections == 0)


# Faults.


@pytest.mark.parametrize(
    ("overrides", "error", "events_received"),
    [
        ({"drop_before_head": True}, httpx.RemoteProtocolError, 0),
        ({"drop_before_head": True, "reset": True}, httpx.ReadError, 0),
        ({"drop_after": 2}, httpx.RemoteProtocolError, 2),
        ({"drop_after": 2, "reset": True}, httpx.ReadError, 2),
    ],
)
def test_dropped_connections(
    simulator: ProviderSimulator,
    client: httpx.Client,
    overrides: dict,
    error: type[Exception],
    events_received: int,
) -> None:
    received = b""
    with (
        pytest.raises(error),
        client.stream("POST", "/chat/completions", json=chat(True, x_sim=overrides)) as r,
    ):
        for piece in r.iter_raw():
            received += piece

    assert len(data_events(received.decode())) == events_received
    assert simulator.requests[0].outcome == "dropped"
    simulator.wait_for(lambda: simulator.open_connections == 0)
    assert simulator.aborted_streams == 0  # dropped by the simulator, not aborted by the client


def test_json_body_dropped_midway(client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError, match="without sending complete message body"):
        client.post("/chat/completions", json=chat(x_sim={"drop_after": 0}))


def test_malformed_event_then_the_stream_goes_on(client: httpx.Client) -> None:
    _, text = stream_text(client, chat(stream=True, x_sim={"malformed_after": 1, "tokens": 1}))

    data = data_events(text)
    assert data[1].startswith('{"id": "chatcmpl-broken"')
    with pytest.raises(ValueError):
        httpx.Response(200, content=data[1]).json()
    assert data[-1] == "[DONE]"
    assert len(data) == 5


def test_hang_never_answers_until_the_client_gives_up(simulator: ProviderSimulator) -> None:
    with httpx.Client(base_url=simulator.base_url, timeout=httpx.Timeout(5.0, read=0.3)) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.post("/chat/completions", json=chat(x_sim={"hang": True}))
        assert time.monotonic() - started >= 0.3

    simulator.wait_for(lambda: simulator.open_connections == 0)
    assert simulator.requests[0].outcome == "client_closed"
    assert simulator.aborted_streams == 0  # not a stream request


def test_client_abort_mid_stream_is_counted(simulator: ProviderSimulator, client: httpx.Client) -> None:
    body = chat(stream=True, x_sim={"tokens": 100, "token_delay": 0.05})
    with client.stream("POST", "/chat/completions", json=body) as response:
        first = next(iter_sse(response))
        assert first.json()["choices"][0]["delta"]["role"] == "assistant"
        # Leaving the block closes the stream: httpx closes a connection whose body is unread.

    simulator.wait_for(lambda: simulator.aborted_streams == 1, message="abort not noticed")
    simulator.wait_for(lambda: simulator.open_connections == 0)
    [recorded] = simulator.requests
    assert recorded.outcome == "client_closed"
    assert len(recorded.sent_at) < 10


def test_hang_after_events_then_abort(simulator: ProviderSimulator) -> None:
    timeout = httpx.Timeout(5.0, read=0.3)
    with httpx.Client(base_url=simulator.base_url, timeout=timeout) as client:
        events = []
        with (
            pytest.raises(httpx.ReadTimeout),
            client.stream("POST", "/chat/completions", json=chat(True, x_sim={"hang_after": 2})) as r,
        ):
            events.extend(iter_sse(r))

    assert len(events) == 2
    simulator.wait_for(lambda: simulator.aborted_streams == 1)


# Connections.


def test_keep_alive_reuses_one_connection_for_json_and_streams(
    simulator: ProviderSimulator, client: httpx.Client
) -> None:
    client.post("/chat/completions", json=chat())
    stream_text(client, chat(stream=True))
    client.get("/models")

    assert simulator.total_connections == 1
    assert {recorded.connection_id for recorded in simulator.requests} == {1}
    assert simulator.open_connections == 1


def test_connections_are_counted_while_open(simulator: ProviderSimulator) -> None:
    clients = [httpx.Client(base_url=simulator.base_url, timeout=CLIENT_TIMEOUT) for _ in range(3)]
    for client in clients:
        client.get("/models")
    assert simulator.open_connections == 3
    for client in clients:
        client.close()

    simulator.wait_for(lambda: simulator.open_connections == 0)
    assert simulator.total_connections == 3


def test_stop_ends_hanging_answers_and_resets() -> None:
    sim = ProviderSimulator()
    sim.start()
    sock = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 27\r\n\r\n")
    sock.sendall(b'{"x_sim": {"hang": true}}  ')
    sim.wait_for(lambda: len(sim.requests) == 1)

    stopper = threading.Thread(target=sim.stop)
    stopper.start()
    stopper.join(5)

    assert not stopper.is_alive()
    assert sock.recv(100) == b""  # the simulator closed its side
    sock.close()
    assert sim.requests[0].outcome == "cancelled"
    sim.reset()
    assert (sim.requests, sim.total_connections) == ([], 0)


def test_wait_for_raises_on_timeout(simulator: ProviderSimulator) -> None:
    with pytest.raises(TimeoutError, match="never"):
        simulator.wait_for(lambda: False, timeout=0.05, message="never")
