"""Opt-in CORS over real sockets: off by default, preflights answered without a key and without reaching
an endpoint (204, or 400 without allow headers), Access-Control-Allow-Origin on every answer to an
allowed origin (200, 401, 404, 413, 429, 5xx, SSE), and a hot reload that turns it on."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.access.keys import hash_secret
from tests.support.harness import CLIENT_TIMEOUT, running_gateway, sim_routes_yaml
from tests.support.reload_support import write_atomically
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.waiting import eventually

KEY = "sk-gw-cors-0123456789abcdef"
APP = "https://app.example.com"
CHAT = "/v1/chat/completions"
BODY = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}
SDK_HEADERS = "authorization, content-type, x-stainless-os, x-stainless-retry-count, openai-beta"


def routes_yaml(base_url: str, *, cors: str = "", keys: bool = False) -> str:
    text = sim_routes_yaml(base_url, health_check=False)
    if keys:
        text += f"keys:\n  team:\n    secret: {hash_secret(KEY)}\n    limits: {{requests_per_minute: 2}}\n"
    if cors:
        text += "settings:\n  cors:\n" + textwrap.indent(textwrap.dedent(cors), "    ")
    return text


def preflight(origin: str = APP, method: str = "POST", headers: str | None = SDK_HEADERS) -> dict[str, str]:
    asked = {"origin": origin, "access-control-request-method": method}
    if headers is not None:
        asked["access-control-request-headers"] = headers
    return asked


@pytest.fixture
def cors_client(simulator: ProviderSimulator, write_routes: Callable[..., Path]) -> Iterator[httpx.Client]:
    """CORS for APP (defaults otherwise) in front of a keyed gateway."""
    config_dir = write_routes(routes_yaml(simulator.base_url, cors=f"allow_origins: [{APP}]\n", keys=True))
    with (
        running_gateway(config_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        yield client


def assert_allowed(response: httpx.Response) -> None:
    assert response.headers["access-control-allow-origin"] == APP
    assert "Origin" in response.headers["vary"]
    assert "x-request-id" in response.headers["access-control-expose-headers"]


def test_off_by_default(simulator: ProviderSimulator, write_routes: Callable[..., Path]) -> None:
    config_dir = write_routes(routes_yaml(simulator.base_url))
    with (
        running_gateway(config_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        assert client.options(CHAT, headers=preflight()).status_code == 405
        assert client.options("/nowhere", headers=preflight()).status_code == 404
        response = client.post(CHAT, json=BODY, headers={"origin": APP})
    assert response.status_code == 200
    assert not [name for name in response.headers if name.startswith("access-control-")]
    assert "vary" not in response.headers


def test_preflight_allowed_without_a_key(cors_client: httpx.Client, simulator: ProviderSimulator) -> None:
    for path in (CHAT, "/v1/messages", "/v1/models", "/nowhere"):
        response = cors_client.options(path, headers=preflight())
        assert response.status_code == 204, (path, response.text)
        assert response.headers["access-control-allow-origin"] == APP
        assert set(response.headers["access-control-allow-methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
        assert response.headers["access-control-allow-headers"] == SDK_HEADERS
        assert response.headers["access-control-max-age"] == "600"
        assert "Origin" in response.headers["vary"]
        assert "access-control-allow-credentials" not in response.headers
    assert simulator.requests == []


@pytest.mark.parametrize(
    ("asked", "failure"),
    [
        (preflight(origin="https://evil.example.com"), "origin"),
        (preflight(method="DELETE"), "method"),
        (preflight(headers="authorization, x-evil"), "headers"),
    ],
    ids=["origin", "method", "header"],
)
def test_preflight_refused(cors_client: httpx.Client, asked: dict[str, str], failure: str) -> None:
    response = cors_client.options(CHAT, headers=asked)
    assert response.status_code == 400
    assert failure in response.text
    assert not [name for name in response.headers if name.startswith("access-control-")]


def test_actual_answers_carry_the_origin(cors_client: httpx.Client, simulator: ProviderSimulator) -> None:
    origin = {"origin": APP}
    keyed = {**origin, "authorization": f"Bearer {KEY}"}
    unauthenticated = cors_client.post(CHAT, json=BODY, headers=origin)
    assert unauthenticated.status_code == 401
    assert_allowed(unauthenticated)
    ok = cors_client.post(CHAT, json=BODY, headers=keyed)
    assert ok.status_code == 200
    assert_allowed(ok)
    unknown = cors_client.post(CHAT, json={**BODY, "model": "nope"}, headers=keyed)
    assert unknown.status_code == 404
    assert_allowed(unknown)
    simulator.enqueue(Behaviour(status=500))
    failed = cors_client.post(CHAT, json=BODY, headers=keyed)
    assert failed.status_code == 500
    assert_allowed(failed)
    limited = cors_client.post(CHAT, json=BODY, headers=keyed)  # the third within the minute
    assert limited.status_code == 429
    assert_allowed(limited)
    too_large = cors_client.post(CHAT, content=b"x" * (11 * 1024 * 1024), headers=origin)
    assert too_large.status_code == 413
    assert_allowed(too_large)
    other = cors_client.post(CHAT, json=BODY, headers={"origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers
    assert other.headers["vary"] == "Origin"


def test_streams_carry_the_origin(cors_client: httpx.Client) -> None:
    headers = {"origin": APP, "authorization": f"Bearer {KEY}"}
    with cors_client.stream("POST", CHAT, json={**BODY, "stream": True}, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert_allowed(response)
        assert "data: [DONE]" in response.read().decode()


def test_any_origin(simulator: ProviderSimulator, write_routes: Callable[..., Path]) -> None:
    cors = 'allow_origins: ["*"]\nallow_headers: ["*"]\nallow_methods: ["*"]\nmax_age: 60\n'
    config_dir = write_routes(routes_yaml(simulator.base_url, cors=cors))
    with (
        running_gateway(config_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        asked = client.options(
            CHAT, headers=preflight(origin="https://any.example", method="DELETE", headers="x-anything")
        )
        response = client.post(CHAT, json=BODY, headers={"origin": "https://any.example"})
    assert asked.status_code == 204
    assert asked.headers["access-control-allow-origin"] == "*"
    assert asked.headers["access-control-allow-headers"] == "x-anything"
    assert asked.headers["access-control-max-age"] == "60"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "vary" not in response.headers


def test_credentials_echo_the_origin(simulator: ProviderSimulator, write_routes: Callable[..., Path]) -> None:
    cors = f"allow_origins: [{APP}]\nallow_credentials: true\nexpose_headers: [x-gateway-provider]\n"
    config_dir = write_routes(routes_yaml(simulator.base_url, cors=cors))
    with (
        running_gateway(config_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        asked = client.options(CHAT, headers=preflight())
        response = client.post(CHAT, json=BODY, headers={"origin": APP})
    assert asked.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-expose-headers"] == "x-gateway-provider"


async def test_hot_reload_turns_cors_on(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    config_dir = write_routes(routes_yaml(simulator.base_url))
    with (
        running_gateway(config_dir, reload=True) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        assert client.options(CHAT, headers=preflight()).status_code == 405
        write_atomically(
            config_dir / "routes.yaml", routes_yaml(simulator.base_url, cors=f"allow_origins: [{APP}]\n")
        )

        def preflight_answered() -> bool:
            return client.options(CHAT, headers=preflight()).status_code == 204

        await eventually(preflight_answered, timeout=10.0, message="the reload did not turn CORS on")
        response = client.post(CHAT, json=BODY, headers={"origin": APP})
        assert response.headers["access-control-allow-origin"] == APP
