"""The OpenAI surface beyond chat raises the official SDK's typed errors, over real sockets: for
`/v1/responses`, `/v1/embeddings`, `/v1/completions` and `GET /v1/models/{id}`, an unknown model is
`NotFoundError`, a bad field `BadRequestError` naming its `param`, a missing or wrong gateway key
`AuthenticationError`, a key over its `requests_per_minute` `RateLimitError` with Retry-After.
Every body has OpenAI's error shape. (The Anthropic SDK's typed errors on /v1/messages are covered by
tests/e2e/test_messages_translated_e2e.py.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway.access.keys import hash_secret
from tests.support.harness import CLIENT_TIMEOUT, running_gateway, write_config
from tests.support.openai_schemas import validate_error
from tests.support.simulator import ProviderSimulator

pytestmark = pytest.mark.timeout(60)

TEAM_KEY = "sk-gw-surface-team"
LIMITED_KEYS = {api: f"sk-gw-surface-limited-{api}" for api in ("responses", "embeddings", "completions")}


def routes_yaml(sim_url: str) -> str:
    limited = "".join(
        f"  limited-{api}: {{secret: {hash_secret(key)}, limits: {{requests_per_minute: 1}}}}\n"
        for api, key in LIMITED_KEYS.items()
    )
    return f"""\
providers:
  mock: {{type: mock}}
  legacy:
    type: openai
    base_url: {sim_url}
    api_key: ${{SIM_API_KEY:-sim-key}}
    apis: {{chat: true, completions: true}}
    health_check: {{enabled: false}}
routes:
  talk:
    targets: [{{provider: mock}}]
  davinci:
    targets: [{{provider: legacy}}]
keys:
  team: {{secret: {hash_secret(TEAM_KEY)}}}
{limited}"""


@pytest.fixture
def gateway(simulator: ProviderSimulator, tmp_path: Path) -> Iterator[str]:
    with running_gateway(write_config(tmp_path, routes_yaml(simulator.base_url))) as gw:
        yield gw.base_url


def sdk(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=20.0)


# One call per API: (client, model, extra fields) -> the SDK's call.
Call = Callable[[openai.OpenAI, str, dict[str, Any]], object]
CALLS: dict[str, Call] = {
    "responses": lambda c, model, extra: c.responses.create(model=model, input="hi", **extra),
    "embeddings": lambda c, model, extra: c.embeddings.create(model=model, input="hi", **extra),
    "completions": lambda c, model, extra: c.completions.create(model=model, prompt="hi", **extra),
    "models": lambda c, model, extra: c.models.retrieve(model, **extra),
}
SERVING = {"responses": "talk", "embeddings": "talk", "completions": "davinci", "models": "talk"}


def openai_error(error: openai.APIStatusError) -> dict[str, Any]:
    """The error body as sent (the SDK keeps only its `error` member), checked against OpenAI's shape."""
    body = error.response.json()
    validate_error(body)
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.mark.parametrize("api", CALLS)
def test_unknown_model_is_not_found(gateway: str, api: str) -> None:
    with sdk(gateway, TEAM_KEY) as client, pytest.raises(openai.NotFoundError) as caught:
        CALLS[api](client, "no-such-model", {})

    error = openai_error(caught.value)
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert "no-such-model" in error["message"]


@pytest.mark.parametrize(
    ("api", "extra", "param"),
    [
        ("responses", {"extra_body": {"input": 42}}, "input"),
        ("responses", {"store": True}, "store"),
        ("embeddings", {"extra_body": {"encoding_format": "hex"}}, "encoding_format"),
        ("embeddings", {"extra_body": {"input": {"text": "hi"}}}, "input"),
        ("completions", {"extra_body": {"prompt": {"text": "hi"}}}, "prompt"),
        ("completions", {"extra_body": {"stream": "yes"}}, "stream"),
    ],
)
def test_a_bad_field_is_a_bad_request_naming_it(
    gateway: str, simulator: ProviderSimulator, api: str, extra: dict[str, Any], param: str
) -> None:
    with sdk(gateway, TEAM_KEY) as client, pytest.raises(openai.BadRequestError) as caught:
        CALLS[api](client, SERVING[api], extra)

    error = openai_error(caught.value)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert simulator.requests == []  # refused before any upstream


@pytest.mark.parametrize("api", CALLS)
@pytest.mark.parametrize("key", [None, "sk-gw-wrong"])
def test_a_missing_or_wrong_key_is_an_authentication_error(gateway: str, api: str, key: str | None) -> None:
    # Without a key, the SDK must be told to send no Authorization header.
    extra: dict[str, Any] = {"extra_headers": {"Authorization": openai.omit}} if key is None else {}
    with sdk(gateway, key or "unused") as client, pytest.raises(openai.AuthenticationError) as caught:
        CALLS[api](client, SERVING[api], extra)

    assert caught.value.status_code == 401
    error = openai_error(caught.value)
    assert error["code"] in {"missing_api_key", "invalid_api_key"}
    assert (key or TEAM_KEY) not in caught.value.response.text


@pytest.mark.parametrize("api", LIMITED_KEYS)
def test_a_key_over_its_request_limit_is_rate_limited(
    gateway: str, simulator: ProviderSimulator, api: str
) -> None:
    with sdk(gateway, LIMITED_KEYS[api]) as client:
        CALLS[api](client, SERVING[api], {}) if api != "completions" else _first_completion(gateway)
        with pytest.raises(openai.RateLimitError) as caught:
            CALLS[api](client, SERVING[api], {})

    error = openai_error(caught.value)
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")  # OpenAI's words
    assert f"limited-{api}" in error["message"] and LIMITED_KEYS[api] not in error["message"]
    retry_after = caught.value.response.headers["retry-after"]
    assert 0 < int(retry_after) <= 60


def _first_completion(gateway: str) -> None:
    """The limited key's one admitted completions request (the simulator has no /completions: its 404
    comes back, but the request counted)."""
    answer = httpx.post(
        f"{gateway}/v1/completions",
        json={"model": "davinci", "prompt": "hi"},
        headers={"authorization": f"Bearer {LIMITED_KEYS['completions']}"},
        timeout=CLIENT_TIMEOUT,
    )
    assert answer.status_code != 429
