"""Upstream answers the client must not see raw, over real sockets: a 3xx (never followed, never passed on)
and a 401/403 (the provider refusing the gateway's own key) become a 502 in each inbound API's error
shape, streaming or not, are never retried on that target, and fail over to the next one.

The refusing upstream is a raw loopback server (`tests.support.raw_upstream`) that answers every path, so
one provider can declare all five APIs; the simulator is the healthy target failed over to.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.support.harness import CLIENT_TIMEOUT, running_gateway, write_config
from tests.support.raw_upstream import Upstream, read_head
from tests.support.simulator import ProviderSimulator

PROVIDER_KEY = "sk-provider-key-0123456789"
LOCATION = "https://login.example.com/oauth/authorize?token=tok-SECRET-in-query"
CHAT = {"model": "bad-model", "messages": [{"role": "user", "content": "hi"}]}
# Each inbound API: (path, body); the second element of each pair says whether it can stream.
CALLS: list[tuple[str, dict[str, Any], bool]] = [
    ("/v1/chat/completions", CHAT, True),
    ("/v1/messages", {**CHAT, "max_tokens": 16}, True),
    ("/v1/responses", {"model": "bad-model", "input": "hi"}, True),
    ("/v1/embeddings", {"model": "bad-model", "input": "hi"}, False),
    ("/v1/completions", {"model": "bad-model", "prompt": "hi"}, True),
]
RETRY = {"attempts": 3, "backoff": {"base": 0.0, "max": 0.0}, "retry_on": ["502", "500", "connect_error"]}


def refusing(status: int, received: list[bytes]) -> Any:
    """A raw upstream handler answering `status` to every request: a redirect with a Location (and a
    body that must not reach the client), or an OpenAI error body echoing a key."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_head(reader))
        if 300 <= status < 400:
            body = b"<html>moved, see tok-SECRET-in-body</html>"
            extra = b"location: " + LOCATION.encode() + b"\r\ncontent-type: text/html\r\n"
        else:
            message = f"Incorrect API key provided: {PROVIDER_KEY}"
            body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
            extra = b"content-type: application/json\r\n"
        head = b"HTTP/1.1 %d Whatever\r\n%scontent-length: %d\r\n\r\n" % (status, extra, len(body))
        writer.write(head + body)
        await writer.drain()

    return handler


def routes_yaml(bad_url: str, sim_url: str | None = None) -> str:
    good = (
        f"\n  good:\n    type: openai\n    base_url: {sim_url}\n    health_check: {{enabled: false}}"
        if sim_url
        else ""
    )
    targets = "[{provider: bad}, {provider: good}]" if sim_url else "[{provider: bad}]"
    return f"""\
providers:
  bad:
    type: openai
    base_url: {bad_url}
    api_key: ${{UPSTREAM_ANSWERS_KEY:-{PROVIDER_KEY}}}
    apis: {{chat: true, messages: true, responses: true, embeddings: true, completions: true}}
    health_check: {{enabled: false}}
    retry: {json.dumps(RETRY)}{good}
routes:
  bad-model:
    targets: {targets}
    retry: {json.dumps(RETRY)}
"""


def upstream_base(upstream: Upstream) -> str:
    return upstream.url.removesuffix("/chat/completions")


def error_of(path: str, response: httpx.Response) -> dict[str, Any]:
    """The error object of `response`, checked to be in the shape of the API of `path`."""
    data = response.json()
    if path.startswith("/v1/messages"):
        assert data["type"] == "error" and data["error"]["type"] == "api_error", data
        return dict(data["error"])
    assert set(data["error"]) == {"message", "type", "param", "code"}, data
    assert data["error"]["type"] == "server_error"
    return dict(data["error"])


async def every_api_answer(
    config: Path, received: list[bytes]
) -> list[tuple[tuple[str, bool], httpx.Response, int]]:
    """Each inbound API's answer from a gateway on `config`, plain and streamed where the API streams, with
    how many requests the upstream got for it (`received` is what it records)."""
    answers = []
    with running_gateway(config) as gateway:
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
            for path, body, streams in CALLS:
                for stream in (False, True) if streams else (False,):
                    before = len(received)
                    response = await client.post(path, json={**body, "stream": stream} if stream else body)
                    answers.append(((path, stream), response, len(received) - before))
    assert len(answers) == sum(2 if streams else 1 for _, _, streams in CALLS)
    return answers


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_is_a_502_on_every_api_streaming_or_not(tmp_path: Path, status: int) -> None:
    received: list[bytes] = []
    async with Upstream(refusing(status, received)) as upstream:
        config = write_config(tmp_path, routes_yaml(upstream_base(upstream)))
        answers = await every_api_answer(config, received)
    for (path, stream), response, sent in answers:
        where = (path, stream)
        assert response.status_code == 502, (where, response.text)
        assert "location" not in response.headers, where
        error = error_of(path, response)
        expected = f"provider 'bad' redirected ({status} to host 'login.example.com')"
        assert expected in error["message"], (where, error)
        assert "SECRET" not in response.text and "oauth" not in response.text, where
        if not path.startswith("/v1/messages"):
            assert error["code"] == "upstream_redirect"
        assert sent == 1, f"{where}: retried on the same target"
        assert response.headers["x-gateway-attempts"] == "1"
    # Never followed: every request the upstream saw went to its own paths, none to the Location.
    assert all(b"/oauth" not in request for request in received)


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_are_a_502_naming_the_provider(tmp_path: Path, status: int) -> None:
    received: list[bytes] = []
    async with Upstream(refusing(status, received)) as upstream:
        config = write_config(tmp_path, routes_yaml(upstream_base(upstream)))
        answers = await every_api_answer(config, received)
    for (path, stream), response, sent in answers:
        where = (path, stream)
        assert response.status_code == 502, (where, response.text)
        error = error_of(path, response)
        expected = f"provider 'bad' rejected the gateway's credentials ({status})"
        assert expected in error["message"], (where, error)
        assert PROVIDER_KEY not in response.text and "Incorrect" not in response.text
        if not path.startswith("/v1/messages"):
            assert error["code"] == "upstream_auth_failed"
        assert sent == 1, f"{where}: retried on the same target"


async def test_the_openai_sdk_sees_a_server_error_not_its_own_key_refused(tmp_path: Path) -> None:
    received: list[bytes] = []
    async with Upstream(refusing(401, received)) as upstream:
        config = write_config(tmp_path, routes_yaml(upstream_base(upstream)))
        with running_gateway(config) as gateway:
            async with openai.AsyncOpenAI(
                base_url=f"{gateway.base_url}/v1", api_key="gw-key", timeout=CLIENT_TIMEOUT, max_retries=0
            ) as client:
                with pytest.raises(openai.InternalServerError) as plain:
                    await client.chat.completions.create(model="bad-model", messages=CHAT["messages"])
                with pytest.raises(openai.APIStatusError) as streamed:
                    await client.chat.completions.create(
                        model="bad-model", messages=CHAT["messages"], stream=True
                    )
    for raised in (plain.value, streamed.value):
        assert not isinstance(raised, openai.AuthenticationError)
        assert raised.status_code == 502 and raised.code == "upstream_auth_failed"
        assert "rejected the gateway's credentials (401)" in raised.message


async def test_the_anthropic_sdk_sees_a_server_error_for_a_redirect_and_for_a_403(tmp_path: Path) -> None:
    for status in (302, 403):
        received: list[bytes] = []
        async with Upstream(refusing(status, received)) as upstream:
            config = write_config(tmp_path / str(status), routes_yaml(upstream_base(upstream)))
            with running_gateway(config) as gateway:
                async with anthropic.AsyncAnthropic(
                    base_url=gateway.base_url, api_key="gw-key", timeout=10.0, max_retries=0
                ) as client:
                    with pytest.raises(anthropic.InternalServerError) as raised:
                        await client.messages.create(
                            model="bad-model", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
                        )
        assert not isinstance(raised.value, anthropic.PermissionDeniedError)
        assert raised.value.status_code == 502
        body = raised.value.body
        assert isinstance(body, dict) and body["type"] == "error", body
        assert body["error"]["type"] == "api_error" and "provider 'bad'" in body["error"]["message"]


@pytest.mark.parametrize("status", [302, 401])
@pytest.mark.parametrize("stream", [False, True])
async def test_fails_over_to_the_next_target_without_retrying_the_first(
    tmp_path: Path, simulator: ProviderSimulator, status: int, stream: bool
) -> None:
    received: list[bytes] = []
    async with Upstream(refusing(status, received)) as upstream:
        config = write_config(tmp_path, routes_yaml(upstream_base(upstream), simulator.base_url))
        with running_gateway(config) as gateway:
            async with httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
                response = await client.post("/v1/chat/completions", json={**CHAT, "stream": stream})
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-provider"] == "good"
    assert (
        response.headers["x-gateway-attempts"] == "2"
    )  # once on `bad` (despite attempts: 3), once on `good`
    assert len(received) == 1
    assert ("data: [DONE]" in response.text) if stream else response.json()["object"] == "chat.completion"


async def test_the_refusal_body_is_logged_at_debug_with_the_key_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway.providers")
    received: list[bytes] = []
    async with Upstream(refusing(401, received)) as upstream:
        config = write_config(tmp_path, routes_yaml(upstream_base(upstream)))
        with running_gateway(config) as gateway:
            async with httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
                response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    logged = [r.getMessage() for r in caplog.records if r.name == "gateway.providers"]
    assert any(
        "provider bad answered 401" in line and "Incorrect API key provided: ***" in line for line in logged
    )
    assert all(PROVIDER_KEY not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("status", [400, 404, 429, 500])
async def test_other_upstream_statuses_still_pass_through(tmp_path: Path, status: int) -> None:
    received: list[bytes] = []
    async with Upstream(refusing(status, received)) as upstream:
        config = write_config(tmp_path, routes_yaml(upstream_base(upstream)))
        with running_gateway(config) as gateway:
            async with httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
                response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == status, response.text
