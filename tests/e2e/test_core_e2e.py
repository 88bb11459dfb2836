"""The core gateway end to end: real uvicorn on loopback, the provider simulator upstream, the official
`openai` SDK and httpx as clients; every body and stream chunk checked against OpenAI's schemas."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway
from tests.support.openai_schemas import (
    validate_chat_chunk,
    validate_chat_completion,
    validate_error,
    validate_model_list,
)
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.sse_reader import parse_sse

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [{"role": "user", "content": "Say hello"}]

TWO_PROVIDERS = """\
providers:
  sim:
    type: openai
    base_url: {base_url}
    api_key: ${{SIM_API_KEY:-sim-key}}
  missing:
    type: openai
    base_url: https://api.example.invalid/v1
    api_key: ${{GATEWAY_TEST_UNSET_KEY}}
routes:
  sim-model:
    aliases: [sim-alias]
    targets:
      - provider: sim
  renamed:
    targets:
      - provider: sim
        model: upstream-name
  "sim-glob-*":
    targets:
      - provider: sim
  needs-key:
    targets:
      - provider: missing
"""


@pytest.fixture
def gateway(simulator: ProviderSimulator, write_routes: Callable[..., Path]) -> Iterator[RunningGateway]:
    config_dir = write_routes(TWO_PROVIDERS.format(base_url=simulator.base_url))
    with running_gateway(config_dir) as running:
        yield running


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as http:
        yield http


@pytest.fixture
def sdk(gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{gateway.base_url}/v1", api_key="client-key", timeout=CLIENT_TIMEOUT, max_retries=0
    ) as sdk_client:
        yield sdk_client


def test_sdk_non_streaming_answer_matches_openai_schema(
    sdk: openai.OpenAI, simulator: ProviderSimulator
) -> None:
    raw = sdk.chat.completions.with_raw_response.create(model="sim-model", messages=MESSAGES)
    completion = raw.parse()
    validate_chat_completion(raw.http_response.json())
    assert completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert raw.headers["x-gateway-provider"] == "sim"
    assert raw.headers["x-gateway-attempts"] == "1"
    assert raw.headers["x-request-id"]
    upstream = simulator.chat_requests[-1]
    assert upstream.json["model"] == "sim-model"
    assert upstream.json["messages"] == MESSAGES
    assert upstream.headers["authorization"] == "Bearer sim-key"
    assert upstream.headers["x-request-id"] == raw.headers["x-request-id"]


def test_sdk_stream_chunks_match_openai_schema(sdk: openai.OpenAI, client: httpx.Client) -> None:
    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in sdk.chat.completions.create(model="sim-model", messages=MESSAGES, stream=True)
        if chunk.choices
    ]
    assert "".join(pieces).strip()
    with client.stream(
        "POST", "/v1/chat/completions", json={"model": "sim-model", "messages": MESSAGES, "stream": True}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events, _comments = parse_sse(response.read().decode())
    assert events[-1].is_done
    chunks = [json.loads(event.data) for event in events[:-1]]
    assert len(chunks) >= 3
    for chunk in chunks:
        validate_chat_chunk(chunk)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "".join(
        pieces
    )


def test_stream_usage_is_requested_upstream_but_only_returned_when_asked(
    sdk: openai.OpenAI, simulator: ProviderSimulator
) -> None:
    plain = list(sdk.chat.completions.create(model="sim-model", messages=MESSAGES, stream=True))
    assert simulator.chat_requests[-1].json["stream_options"] == {"include_usage": True}
    assert all(chunk.usage is None for chunk in plain)
    assert all(chunk.choices for chunk in plain)
    asked = list(
        sdk.chat.completions.create(
            model="sim-model", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert asked[-1].usage is not None and asked[-1].usage.completion_tokens > 0


def test_alias_glob_and_upstream_model_name(sdk: openai.OpenAI, simulator: ProviderSimulator) -> None:
    sdk.chat.completions.create(model="sim-alias", messages=MESSAGES)
    assert simulator.chat_requests[-1].json["model"] == "sim-alias"
    sdk.chat.completions.create(model="renamed", messages=MESSAGES)
    assert simulator.chat_requests[-1].json["model"] == "upstream-name"
    sdk.chat.completions.create(model="sim-glob-large", messages=MESSAGES)
    assert simulator.chat_requests[-1].json["model"] == "sim-glob-large"


def test_models_list(client: httpx.Client) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    validate_model_list(body)
    ids = {model["id"] for model in body["data"]}
    assert {"sim-model", "sim-alias", "renamed", "needs-key"} <= ids


@pytest.mark.parametrize(
    ("payload", "status", "code", "param"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b"[1, 2]", 400, "invalid_json", None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', 400, "missing_required_parameter", "model"),
        (b'{"model": "sim-model"}', 400, "missing_required_parameter", "messages"),
        (b'{"model": "sim-model", "messages": []}', 400, "invalid_type", "messages"),
        (
            b'{"model": "sim-model", "messages": [{"role": "user"}], "stream": "yes"}',
            400,
            "invalid_type",
            "stream",
        ),
        (
            b'{"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model_not_found",
            "model",
        ),
    ],
)
def test_bad_requests_get_openai_errors(
    client: httpx.Client, payload: bytes, status: int, code: str, param: str | None
) -> None:
    response = client.post(
        "/v1/chat/completions", content=payload, headers={"content-type": "application/json"}
    )
    assert response.status_code == status
    body = response.json()
    validate_error(body)
    assert body["error"]["code"] == code
    assert body["error"]["param"] == param
    assert body["error"]["message"]


def test_provider_without_its_secret_answers_503_and_health_says_why(client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", json={"model": "needs-key", "messages": MESSAGES})
    assert response.status_code == 503
    body = response.json()
    validate_error(body)
    assert "GATEWAY_TEST_UNSET_KEY" in body["error"]["message"]
    health = client.get("/health")
    assert health.status_code == 200  # other routes can still be served
    missing = health.json()["providers"]["missing"]
    assert missing["state"] == "unavailable"
    assert "GATEWAY_TEST_UNSET_KEY" in missing["reason"]


def test_upstream_4xx_passes_through_with_status_and_body(
    sdk: openai.OpenAI, simulator: ProviderSimulator
) -> None:
    simulator.enqueue(Behaviour(status=422, error_message="temperature is out of range"))
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        sdk.chat.completions.create(model="sim-model", messages=MESSAGES)
    assert caught.value.status_code == 422
    assert "temperature is out of range" in caught.value.message
    assert len(simulator.chat_requests) == 1  # a client error is not retried


def test_unknown_model_raises_sdk_not_found(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert caught.value.code == "model_not_found"


def test_default_routes_serve_through_the_mock_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEEPSEEK_API_KEY", "LINGYIWANWU_API_KEY", "API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with (
        running_gateway(ROOT / "routes") as running,
        openai.OpenAI(
            base_url=f"{running.base_url}/v1", api_key="unused", timeout=CLIENT_TIMEOUT, max_retries=0
        ) as sdk_client,
    ):
        reply = sdk_client.chat.completions.create(model="mock", messages=MESSAGES)
        assert reply.choices[0].message.content
        again = sdk_client.chat.completions.create(model="mock", messages=MESSAGES)
        assert again.choices[0].message.content == reply.choices[0].message.content  # deterministic
        streamed = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in sdk_client.chat.completions.create(model="mock", messages=MESSAGES, stream=True)
            if chunk.choices
        )
        assert streamed == reply.choices[0].message.content
        health = httpx.get(f"{running.base_url}/health", timeout=CLIENT_TIMEOUT).json()
        assert health["providers"]["deepseek"]["state"] == "unavailable"
        with pytest.raises(openai.InternalServerError) as caught:
            sdk_client.chat.completions.create(model="deepseek-chat", messages=MESSAGES)
        assert caught.value.status_code == 503
