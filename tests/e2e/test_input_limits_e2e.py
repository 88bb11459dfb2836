"""Input limits over real sockets: 413 for bodies over `max_body_bytes` (from the head alone with a
Content-Length, while reading a chunked one), 431 for heads too large or with too many headers, 400 for
too many messages / input items / tools; each in the error shape of the API, and nothing upstream."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateway.access.keys import hash_secret
from gateway.observe.access_log import ACCESS_LOGGER
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway, sim_routes_yaml
from tests.support.simulator import ProviderSimulator

KEY = "sk-gw-limits-0123456789abcdef"
MIB = 1024 * 1024
LIMIT = 10 * MIB  # the default max_body_bytes
CHAT_PATH = "/v1/chat/completions"


def routes_yaml(base_url: str, *, keys: bool = False, settings: str = "") -> str:
    text = sim_routes_yaml(base_url, health_check=False)
    if keys:
        text += f"keys:\n  team:\n    secret: {hash_secret(KEY)}\n"
    if settings:
        text += "settings:\n" + settings
    return text


@pytest.fixture
def gateway(simulator: ProviderSimulator, write_routes: Callable[..., Path]) -> Iterator[RunningGateway]:
    with running_gateway(write_routes(routes_yaml(simulator.base_url))) as running:
        yield running


@pytest.fixture
def keyed_gateway(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> Iterator[RunningGateway]:
    with running_gateway(write_routes(routes_yaml(simulator.base_url, keys=True))) as running:
        yield running


def big_chat_body(size: int) -> bytes:
    head = b'{"model":"sim-model","messages":[{"role":"user","content":"'
    return head + b"a" * (size - len(head) - 4) + b'"}]}'


def chunks(body: bytes, sent: list[int], piece: int = 64 * 1024) -> Iterator[bytes]:
    """`body` in pieces (httpx sends a generator chunked); `sent` counts what was taken."""
    for start in range(0, len(body), piece):
        sent[0] += piece
        yield body[start : start + piece]


def assert_too_large_openai(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "request_too_large")
    assert str(LIMIT) in error["message"] and "max_body_bytes" in error["message"]
    assert response.headers["connection"] == "close"


def raw_exchange(port: int, head: bytes) -> tuple[bytes, bytes]:
    """Send only `head` on a fresh connection; return the answer and what followed once it was read
    (b"" when the gateway closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(65536)
            assert piece, f"connection closed before an answer: {answer!r}"
            answer += piece
        head_end = answer.index(b"\r\n\r\n") + 4
        length = int(
            next(
                line
                for line in answer[:head_end].split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ).split(b":")[1]
        )
        while len(answer) < head_end + length:
            answer += sock.recv(65536)
        return answer, sock.recv(65536)


@pytest.mark.parametrize("keys", [False, True], ids=["open", "unauthenticated"])
def test_content_length_over_the_limit_is_413_from_the_head_alone(
    simulator: ProviderSimulator, write_routes: Callable[..., Path], keys: bool
) -> None:
    """Only the head is sent: the 413 comes without the body, before the key check, and closes."""
    with running_gateway(write_routes(routes_yaml(simulator.base_url, keys=keys))) as running:
        head = (
            f"POST {CHAT_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {20 * MIB}\r\n\r\n"
        ).encode()
        answer, after = raw_exchange(running.port, head)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b'"code":"request_too_large"' in answer
    assert after == b""  # the connection is closed: the body is never read
    assert simulator.requests == []


def test_20_mib_bodies_are_413_with_and_without_content_length(
    gateway: RunningGateway, simulator: ProviderSimulator
) -> None:
    body = big_chat_body(20 * MIB)
    with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        assert_too_large_openai(client.post(CHAT_PATH, content=body))
    sent = [0]
    with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        assert_too_large_openai(client.post(CHAT_PATH, content=chunks(body, sent)))
    assert sent[0] < 20 * MIB  # the gateway stopped reading: the client could not send it all
    assert simulator.requests == []


def test_endless_chunked_body_is_cut_off(gateway: RunningGateway, simulator: ProviderSimulator) -> None:
    """A body that never ends is answered once it passes the limit (otherwise this test hangs)."""

    def endless() -> Iterator[bytes]:
        yield b'{"model":"sim-model","messages":[{"role":"user","content":"'
        while True:
            yield b"a" * 65536

    with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        assert_too_large_openai(client.post(CHAT_PATH, content=endless()))
    assert simulator.requests == []


def test_chunked_body_after_authentication_is_413(
    keyed_gateway: RunningGateway, simulator: ProviderSimulator
) -> None:
    sent = [0]
    with httpx.Client(base_url=keyed_gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        response = client.post(
            CHAT_PATH,
            content=chunks(big_chat_body(20 * MIB), sent),
            headers={"authorization": f"Bearer {KEY}"},
        )
    assert_too_large_openai(response)
    assert simulator.requests == []


def test_unauthenticated_chunked_body_is_413_over_the_limit_and_401_under_it(
    keyed_gateway: RunningGateway, simulator: ProviderSimulator
) -> None:
    """Without a Content-Length the size is known only by reading: an unauthenticated chunked body is
    read and thrown away up to the limit (plus one piece), so over it the answer is 413 as with a key."""
    sent = [0]
    with httpx.Client(base_url=keyed_gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        response = client.post(CHAT_PATH, content=chunks(big_chat_body(20 * MIB), sent))
        assert_too_large_openai(response)
        assert sent[0] < 20 * MIB  # the gateway stopped reading at the limit
        small = client.post(CHAT_PATH, content=chunks(big_chat_body(64 * 1024), [0]))
        assert small.status_code == 401
        assert small.json()["error"]["code"] == "missing_api_key"
    assert simulator.requests == []


def test_a_body_under_the_limit_passes(gateway: RunningGateway, simulator: ProviderSimulator) -> None:
    with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        assert client.post(CHAT_PATH, content=big_chat_body(LIMIT - 1024)).status_code == 200
        assert client.post(CHAT_PATH, content=chunks(big_chat_body(LIMIT - 1024), [0])).status_code == 200
    assert len(simulator.chat_requests) == 2


def test_413_on_messages_is_anthropic_shaped(gateway: RunningGateway, simulator: ProviderSimulator) -> None:
    client = anthropic.Anthropic(base_url=gateway.base_url, api_key="x", max_retries=0, timeout=10.0)
    with client, pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(
            model="sim-model", max_tokens=16, messages=[{"role": "user", "content": "a" * (11 * MIB)}]
        )
    assert caught.value.status_code == 413
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "request_too_large", "message": caught.value.body["error"]["message"]},  # type: ignore[index]
    }
    assert simulator.requests == []


def test_configured_body_limit_applies(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    settings = "  limits: {max_body_bytes: 2048}\n"
    config_dir = write_routes(routes_yaml(simulator.base_url, settings=settings))
    with (
        running_gateway(config_dir) as running,
        httpx.Client(base_url=running.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        response = client.post(
            "/v1/embeddings", content=b'{"model":"sim-model","input":"' + b"a" * 4096 + b'"}'
        )
    assert response.status_code == 413
    assert "2048" in response.json()["error"]["message"]


# Headers: the 64 KiB header passes the server's fence and gets our 431 in the API's shape; the 8 MiB one
# is refused by the server's fence (api/head_fence.py) after ~1 MiB, also 431 in the API's shape, closed.
@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([("x-big", "a" * 64 * 1024)], "max_header_bytes"),
        ([("x-big", "a" * 8 * MIB)], "the most the server reads"),
        ([(f"x-h{index}", "v") for index in range(20_000)], "max_headers"),
    ],
    ids=["64KiB-header", "8MiB-header", "20000-headers"],
)
@pytest.mark.parametrize("path", [CHAT_PATH, "/v1/messages"])
def test_oversized_heads_are_431(
    gateway: RunningGateway,
    simulator: ProviderSimulator,
    headers: list[tuple[str, str]],
    reason: str,
    path: str,
) -> None:
    with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        response = client.post(path, json={"model": "sim-model"}, headers=headers)
    assert response.status_code == 431
    assert response.headers["connection"] == "close"
    body = response.json()
    message = body["error"]["message"]
    if path == CHAT_PATH:
        assert body["error"]["code"] == "request_header_fields_too_large"
    else:
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert reason in message
    assert simulator.requests == []


def test_an_8_mib_head_is_not_read_whole(gateway: RunningGateway) -> None:
    """The fence answers after ~1 MiB: the client cannot have sent the 8 MiB when the answer comes."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: ")
        sent = 0
        with pytest.raises(OSError):  # the gateway closes (reset or broken pipe) well before 8 MiB
            while sent < 8 * MIB:
                sock.sendall(b"a" * 65536)
                sent += 65536
        assert sent < 8 * MIB


# Counts: messages (chat, Messages), input items (Responses) and tools, each a 400 naming the field.
MANY = 10_001
TOOL: dict[str, Any] = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def test_chat_count_limits(gateway: RunningGateway, simulator: ProviderSimulator) -> None:
    with openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", max_retries=0, timeout=10.0) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="sim-model", messages=[{"role": "user", "content": "hi"}] * MANY
            )
        assert caught.value.param == "messages"
        assert caught.value.code == "array_above_max_length"
        assert "10000" in caught.value.message
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="sim-model", messages=[{"role": "user", "content": "hi"}], tools=[TOOL] * 513
            )
        assert caught.value.param == "tools"
        client.chat.completions.create(
            model="sim-model", messages=[{"role": "user", "content": "hi"}] * 10_000
        )
    assert len(simulator.chat_requests) == 1


def test_responses_counts_input_items(gateway: RunningGateway, simulator: ProviderSimulator) -> None:
    with openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", max_retries=0, timeout=10.0) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(model="sim-model", input=[{"role": "user", "content": "hi"}] * MANY)
        assert caught.value.param == "input"
        with pytest.raises(openai.BadRequestError) as caught:
            client.responses.create(
                model="sim-model",
                input="hi",
                tools=[{"type": "function", "name": "f", "parameters": {}}] * 513,  # type: ignore[list-item]
            )
        assert caught.value.param == "tools"
    assert simulator.requests == []


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_messages_counts(gateway: RunningGateway, simulator: ProviderSimulator, path: str) -> None:
    with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        response = client.post(
            path,
            json={
                "model": "sim-model",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "hi"}] * MANY,
            },
        )
        assert response.status_code == 400
        body = response.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert "'messages'" in body["error"]["message"]
        tools = [{"name": "f", "input_schema": {"type": "object"}}] * 600
        response = client.post(
            path,
            json={
                "model": "sim-model",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": tools,
            },
        )
        assert response.status_code == 400 and "'tools'" in response.json()["error"]["message"]
    assert simulator.requests == []


def test_configured_count_limits(simulator: ProviderSimulator, write_routes: Callable[..., Path]) -> None:
    settings = "  limits: {max_messages: 2, max_tools: 1}\n"
    config_dir = write_routes(routes_yaml(simulator.base_url, settings=settings))
    with (
        running_gateway(config_dir) as running,
        httpx.Client(base_url=running.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        three = [{"role": "user", "content": "hi"}] * 3
        response = client.post(CHAT_PATH, json={"model": "sim-model", "messages": three})
        assert response.status_code == 400 and response.json()["error"]["param"] == "messages"
        response = client.post(CHAT_PATH, json={"model": "sim-model", "messages": three[:2]})
        assert response.status_code == 200


def test_refusals_from_the_head_are_access_lines_with_the_request_id(
    gateway: RunningGateway, simulator: ProviderSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A 413 or 431 decided from the head alone (no endpoint ran) still leaves an access line, with the
    API, the status, the error code and the client's request id, which the answer carries too."""
    head = (
        f"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-request-id: req-too-large\r\n"
        f"content-type: application/json\r\ncontent-length: {20 * MIB}\r\n\r\n"
    ).encode()
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        answer, _ = raw_exchange(gateway.port, head)
        with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
            response = client.post(
                CHAT_PATH,
                json={"model": "sim-model"},
                headers={"x-request-id": "req-head", "x-big": "y" * 40_000},
            )
    assert answer.startswith(b"HTTP/1.1 413 ") and b"x-request-id: req-too-large\r\n" in answer
    assert response.status_code == 431 and response.headers["x-request-id"] == "req-head"
    lines = {getattr(record, "request_id", ""): record for record in caplog.records}
    too_large, head_too_large = lines["req-too-large"], lines["req-head"]
    assert too_large.access["api"] == "messages"  # type: ignore[attr-defined]
    assert (too_large.access["status"], too_large.access["error"]) == (413, "request_too_large")  # type: ignore[attr-defined]
    assert head_too_large.access["api"] == "chat"  # type: ignore[attr-defined]
    fields = head_too_large.access  # type: ignore[attr-defined]
    assert (fields["status"], fields["error"]) == (431, "request_header_fields_too_large")
    assert fields["config_version"] and "status=431" in head_too_large.getMessage()
    assert simulator.requests == []
