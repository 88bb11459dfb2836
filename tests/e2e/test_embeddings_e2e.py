"""`POST /v1/embeddings` through the running gateway with the official `openai` SDK: float and base64,
failover from a target that cannot be reached, keys and allowlists, and a route that does not serve it."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import openai
import pytest

from gateway.access.keys import hash_secret
from tests.support.harness import CLIENT_TIMEOUT, running_gateway, write_config
from tests.support.openai_schemas import validate_error
from tests.support.resilience_support import dead_url

KEY = "sk-gw-embed-team"


def routes_yaml(keys: str = "") -> str:
    return f"""\
providers:
  down:
    type: openai
    base_url: {dead_url()}
    api_key: ${{SIM_API_KEY:-sim-key}}
    apis: {{chat: true, embeddings: true}}
    health_check: {{enabled: false}}
  chat-only:
    type: openai
    base_url: {dead_url()}
    api_key: ${{SIM_API_KEY:-sim-key}}
    health_check: {{enabled: false}}
  mock: {{type: mock}}
routes:
  embed:
    targets: [{{provider: down}}, {{provider: mock}}]
  talk:
    targets: [{{provider: chat-only}}]
{keys}"""


def test_float_and_base64_with_failover(tmp_path: Path) -> None:
    with running_gateway(write_config(tmp_path, routes_yaml())) as gateway:
        client = openai.OpenAI(
            base_url=f"{gateway.base_url}/v1", api_key="x", timeout=CLIENT_TIMEOUT, max_retries=0
        )
        floats = client.embeddings.create(model="embed", input=["hello", "world"], encoding_format="float")
        assert [item.index for item in floats.data] == [0, 1]
        assert all(len(item.embedding) == 8 for item in floats.data)
        assert floats.data[0].embedding != floats.data[1].embedding
        assert floats.usage.prompt_tokens > 0
        raw = client.embeddings.with_raw_response.create(
            model="embed", input="hello", encoding_format="base64"
        )
        assert raw.headers["x-gateway-provider"] == "mock"  # `down` refused the connection: failed over
        assert int(raw.headers["x-gateway-attempts"]) == 2
        packed = raw.http_response.json()["data"][0]["embedding"]
        assert isinstance(packed, str)  # passed through as the upstream encoded it
        decoded = list(struct.unpack("<8f", base64.b64decode(packed)))
        assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-6)
        # The SDK's default (it asks for base64 and decodes it itself) gives the same vector.
        assert client.embeddings.create(model="embed", input="hello").data[0].embedding == pytest.approx(
            floats.data[0].embedding, abs=1e-6
        )


def test_errors_are_typed(tmp_path: Path) -> None:
    keys = f"keys:\n  team: {{secret: {hash_secret(KEY)}, models: [embed, talk]}}\n"
    with running_gateway(write_config(tmp_path, routes_yaml(keys))) as gateway:
        base = f"{gateway.base_url}/v1"
        client = openai.OpenAI(base_url=base, api_key=KEY, timeout=CLIENT_TIMEOUT, max_retries=0)
        with pytest.raises(openai.NotFoundError) as missing:
            client.embeddings.create(model="nope", input="x")
        validate_error(missing.value.response.json())
        with pytest.raises(openai.NotFoundError, match="embeddings API"):
            client.embeddings.create(model="talk", input="x")  # its only target serves chat alone
        with pytest.raises(openai.BadRequestError) as bad:
            client.post("/embeddings", body={"model": "embed"}, cast_to=object)
        assert bad.value.param == "input"  # type: ignore[attr-defined]
        stranger = openai.OpenAI(base_url=base, api_key="sk-gw-wrong", timeout=CLIENT_TIMEOUT, max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            stranger.embeddings.create(model="embed", input="x")
