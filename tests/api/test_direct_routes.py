"""The inbound APIs' endpoints called past FastAPI's stack (`api/direct_routes.py`), across real sockets:
errors are rendered as the registered exception handlers render them, in each API's shape, and every
request that is not a POST to an inbound API's path still goes through FastAPI (404, 405)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api import app as app_module
from gateway.api.paths import INBOUND_PATHS
from gateway.errors import InvalidRequest
from tests.support.harness import CLIENT_TIMEOUT, running_gateway, sim_routes_yaml
from tests.support.simulator import ProviderSimulator

pytestmark = pytest.mark.timeout(60)

CHAT = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}


async def crashing_endpoint(request: Request) -> ASGIApp:
    raise RuntimeError("bug detail sk-not-for-clients")


async def refusing_endpoint(request: Request) -> ASGIApp:
    request.state.request_id = "req-direct"
    raise InvalidRequest("no such thing", param="thing")


async def refusing_while_answering(request: Request) -> ASGIApp:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        raise InvalidRequest("refused before the head", param="body")

    return answer


async def failing_after_the_head(request: Request) -> ASGIApp:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise InvalidRequest("too late to answer")

    return answer


def serve(write_routes: Callable[..., Path], simulator: ProviderSimulator) -> Path:
    return write_routes(sim_routes_yaml(simulator.base_url))


def test_other_methods_and_paths_still_go_through_fastapi(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    with (
        running_gateway(serve(write_routes, simulator)) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
        wrong_method = client.get("/v1/chat/completions")
        unknown = client.post("/v1/chat/completion", json=CHAT)
        health = client.get("/health")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "no such endpoint: POST /v1/chat/completion"
    assert health.status_code == 200


@pytest.mark.parametrize(
    ("path", "shape"),
    [("/v1/chat/completions", "openai"), ("/v1/responses", "openai"), ("/v1/messages", "anthropic")],
)
def test_a_crash_is_a_500_in_the_apis_shape_without_detail(
    simulator: ProviderSimulator,
    write_routes: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    shape: str,
) -> None:
    monkeypatch.setitem(app_module.INBOUND_APIS, path, crashing_endpoint)
    with (
        running_gateway(serve(write_routes, simulator)) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        response = client.post(path, json=CHAT)
    assert response.status_code == 500
    assert "sk-not-for-clients" not in response.text
    if shape == "anthropic":
        assert response.json() == {
            "type": "error",
            "error": {"type": "api_error", "message": "internal gateway error"},
        }
    else:
        assert response.json()["error"]["message"] == "internal gateway error"
        assert response.json()["error"]["code"] == "internal_error"


def test_a_gateway_error_is_rendered_with_its_request_id(
    simulator: ProviderSimulator, write_routes: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app_module.INBOUND_APIS, "/v1/chat/completions", refusing_endpoint)
    monkeypatch.setitem(app_module.INBOUND_APIS, "/v1/completions", refusing_while_answering)
    with (
        running_gateway(serve(write_routes, simulator)) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        before = client.post("/v1/chat/completions", json=CHAT)
        during = client.post("/v1/completions", json={"model": "sim-model", "prompt": "hi"})
    assert before.status_code == 400
    assert before.headers["x-request-id"] == "req-direct"
    assert before.json() == {
        "error": {
            "message": "no such thing",
            "type": "invalid_request_error",
            "param": "thing",
            "code": "invalid_request",
        }
    }
    assert during.status_code == 400
    assert during.json()["error"]["param"] == "body"


def test_an_error_after_the_head_closes_the_connection(
    simulator: ProviderSimulator, write_routes: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app_module.INBOUND_APIS, "/v1/chat/completions", failing_after_the_head)
    with (
        running_gateway(serve(write_routes, simulator)) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):  # closed, or reset
            client.post("/v1/chat/completions", json=CHAT)
        assert client.get("/health").status_code == 200  # the server goes on serving


def test_endpoints_are_the_ones_registered_in_the_router() -> None:
    """The direct table and FastAPI's router hold the same POST paths (405 for other methods needs both)."""
    app = app_module.create_app(Path(__file__).parents[2] / "routes", reload=False)
    routed = {route.path for route in app.router.routes if "POST" in getattr(route, "methods", ())}
    assert routed == set(app_module.INBOUND_APIS)


def test_every_inbound_path_has_an_api_name_for_its_records() -> None:
    assert set(app_module.INBOUND_APIS) == set(INBOUND_PATHS)
