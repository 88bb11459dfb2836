"""Authentication and authorization over real sockets: 401 / 403 bodies and headers, the official
`openai` SDK's typed errors, both header forms, the admin role, open mode, `auth: none`, API_KEY."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from gateway.access.keys import hash_secret
from tests.support.access_support import CHAT_BODY, bearer, keyed_routes_yaml
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway, sim_routes_yaml
from tests.support.simulator import ProviderSimulator

TEAM_KEY = "sk-gw-team-0123456789abcdef"
ADMIN_KEY = "sk-gw-admin-fedcba9876543210"

KEYS_YAML = f"""\
team:
  secret: ${{GW_TEST_TEAM_KEY}}
  models: [mock, sim-model]
admin:
  secret: {hash_secret(ADMIN_KEY)}
  role: admin
"""


@pytest.fixture
def keyed_gateway(
    simulator: ProviderSimulator, write_routes: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningGateway]:
    """Routes `mock`, `other` (mock provider) and `sim-model` (the simulator); keys `team` and `admin`."""
    monkeypatch.setenv("GW_TEST_TEAM_KEY", TEAM_KEY)
    write_routes(sim_routes_yaml(simulator.base_url), "10-sim.yaml")
    config_dir = write_routes(keyed_routes_yaml(KEYS_YAML), "20-keys.yaml")
    with running_gateway(config_dir) as gateway:
        yield gateway


@pytest.fixture
def client(keyed_gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=keyed_gateway.base_url, timeout=CLIENT_TIMEOUT) as http:
        yield http


def sdk(gateway: RunningGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key=key, max_retries=0, timeout=10.0)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"authorization": "Basic dGVhbTpwdw=="}, "missing_api_key"),
        (bearer("sk-gw-wrong-key-000"), "invalid_api_key"),
        ({"x-api-key": "sk-gw-wrong-key-000"}, "invalid_api_key"),
        (bearer(hash_secret(ADMIN_KEY)), "invalid_api_key"),  # the stored hash is not a key
    ],
)
def test_401_in_openai_format(client: httpx.Client, headers: dict[str, str], code: str) -> None:
    response = client.post("/v1/chat/completions", json=CHAT_BODY, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", None, code)
    assert "sk-gw-wrong-key-000" not in response.text


def test_401_comes_before_reading_the_body(client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", content=b"{not json")
    assert response.status_code == 401


def test_both_header_forms_authenticate(client: httpx.Client) -> None:
    for headers in (bearer(TEAM_KEY), {"x-api-key": TEAM_KEY}, {"authorization": f"bearer {ADMIN_KEY}"}):
        response = client.post("/v1/chat/completions", json=CHAT_BODY, headers=headers)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("model", ["other", "missing-model"])
def test_403_for_a_model_outside_the_allowlist(client: httpx.Client, model: str) -> None:
    response = client.post(
        "/v1/chat/completions", json={**CHAT_BODY, "model": model}, headers=bearer(TEAM_KEY)
    )
    if model == "missing-model":  # an unknown model is 404 for everyone, allowlist or not
        assert response.status_code == 404
        return
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "message": "The key 'team' is not allowed to use the model `other`.",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_allowed",
        }
    }


def test_an_alias_of_an_allowed_model_is_allowed(client: httpx.Client) -> None:
    response = client.post(
        "/v1/chat/completions", json={**CHAT_BODY, "model": "mock-alias"}, headers=bearer(TEAM_KEY)
    )
    assert response.status_code == 200


def test_the_sdk_raises_its_typed_errors(keyed_gateway: RunningGateway) -> None:
    messages = CHAT_BODY["messages"]
    with sdk(keyed_gateway, "sk-gw-wrong-key-000") as stranger, sdk(keyed_gateway, TEAM_KEY) as team:
        with pytest.raises(openai.AuthenticationError) as missing:
            stranger.chat.completions.create(model="mock", messages=messages)
        assert missing.value.status_code == 401 and missing.value.code == "invalid_api_key"
        with pytest.raises(openai.PermissionDeniedError) as denied:
            team.chat.completions.create(model="other", messages=messages)
        assert denied.value.status_code == 403 and denied.value.code == "model_not_allowed"
        answer = team.chat.completions.create(model="mock", messages=messages)
        assert answer.choices[0].message.content
        stream = team.chat.completions.create(model="mock", messages=messages, stream=True)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def test_the_gateway_key_is_never_sent_upstream(client: httpx.Client, simulator: ProviderSimulator) -> None:
    for stream in (False, True):
        response = client.post(
            "/v1/chat/completions",
            json={**CHAT_BODY, "model": "sim-model", "stream": stream},
            headers={**bearer(TEAM_KEY), "x-api-key": TEAM_KEY},
        )
        assert response.status_code == 200
    requests = simulator.chat_requests
    assert len(requests) == 2
    for request in requests:
        assert request.headers["authorization"] == "Bearer sim-key"  # the provider's own key
        assert "x-api-key" not in request.headers
        assert TEAM_KEY.encode() not in request.body


def test_stats_needs_an_admin_key(client: httpx.Client) -> None:
    assert client.get("/stats").status_code == 401
    denied = client.get("/stats", headers=bearer(TEAM_KEY))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "admin_required"
    assert client.get("/stats", headers=bearer(ADMIN_KEY)).status_code == 200
    assert client.get("/admin/config", headers=bearer(TEAM_KEY)).status_code == 403
    assert client.get("/admin/config", headers=bearer(ADMIN_KEY)).status_code == 200


def test_health_says_keys_are_enforced(client: httpx.Client) -> None:
    assert client.get("/health").json()["auth"] == "keys"


def test_open_mode_on_loopback(write_routes: Callable[..., Path]) -> None:
    with (
        running_gateway(write_routes(keyed_routes_yaml(""))) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as http,
    ):
        assert http.get("/health").json()["auth"] == "open"
        assert http.post("/v1/chat/completions", json=CHAT_BODY).status_code == 200
        assert http.get("/stats").json()["totals"]["requests"] == 1  # nothing is protected in open mode


def test_auth_none_ignores_configured_keys(write_routes: Callable[..., Path]) -> None:
    config = keyed_routes_yaml(f"team: {{secret: {hash_secret(TEAM_KEY)}}}\n", extra="auth: none\n")
    with (
        running_gateway(write_routes(config)) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as http,
    ):
        assert http.get("/health").json()["auth"] == "none"
        assert http.post("/v1/chat/completions", json=CHAT_BODY).status_code == 200


def test_simple_mode_api_key_variable(
    write_routes: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", "sk-simple-mode-key")
    with (
        running_gateway(write_routes(keyed_routes_yaml(""))) as gateway,
        sdk(gateway, "sk-simple-mode-key") as client,
        sdk(gateway, "sk-not-it") as stranger,
    ):
        assert client.chat.completions.create(model="other", messages=CHAT_BODY["messages"]).choices
        with pytest.raises(openai.AuthenticationError):
            stranger.chat.completions.create(model="mock", messages=CHAT_BODY["messages"])
        stats = httpx.get(f"{gateway.base_url}/stats", headers=bearer("sk-simple-mode-key"), timeout=5)
        assert stats.status_code == 200  # the simple-mode key is the admin
        assert stats.json()["by_key"]["API_KEY"]["requests"] == 1
