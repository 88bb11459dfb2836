"""`GET /streaming-compare` over real sockets, and the receive-side timing it reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.access.keys import hash_secret
from gateway.api.app import create_app
from gateway.streaming.measure import ReceivedBody
from tests.support.access_support import keyed_routes_yaml
from tests.support.harness import CLIENT_TIMEOUT, running_gateway, write_config
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.streaming_support import streaming_routes_yaml

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def client(simulator: ProviderSimulator, tmp_path: Path) -> Iterator[httpx.Client]:
    app = create_app(write_config(tmp_path, streaming_routes_yaml(simulator.base_url)), reload=False)
    with (
        running_gateway(app=app) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as http,
    ):
        yield http


def test_compare_runs_the_request_through_both_streamers_and_without_streaming(
    simulator: ProviderSimulator, client: httpx.Client
) -> None:
    simulator.default = Behaviour(tokens=5, token_delay=0.03)

    answer = client.get(
        "/streaming-compare", params={"model": "sim-model", "prompt": "two words", "max_tokens": 5}
    )

    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["model"], report["prompt"], report["max_tokens"]) == ("sim-model", "two words", 5)
    methods = report["methods"]
    assert list(methods) == ["asgi", "starlette", "non_streaming"]
    assert [methods[name]["streamer"] for name in methods] == ["asgi", "starlette", None]
    for name in ("asgi", "starlette"):
        figures = methods[name]
        assert figures["status"] == 200 and figures["error"] is None
        assert figures["chunks"] == 8  # role, 5 tokens, finish, [DONE] (the usage chunk is not asked for)
        assert figures["bytes"] > 8 * 14
        assert 0 < figures["ttfb_ms"] < figures["total_ms"]
        # Upstream writes one event every 30 ms, and the client receives them as they are written.
        assert 15 < figures["avg_interval_ms"] < 60, figures
        assert figures["max_interval_ms"] >= figures["avg_interval_ms"]
        assert figures["total_ms"] > 6 * 30
    plain = methods["non_streaming"]
    assert plain["status"] == 200 and plain["error"] is None
    assert plain["chunks"] >= 1 and plain["bytes"] > 100
    assert 0 < plain["ttfb_ms"] <= plain["total_ms"]

    upstream = simulator.chat_requests
    assert [request.json["stream"] for request in upstream] == [True, True, False]
    for request in upstream:
        assert request.json["messages"] == [{"role": "user", "content": "two words"}]
        assert request.json["max_tokens"] == 5
        assert "x_use_asgi_streaming" not in request.json


def test_compare_reports_failures_per_method(simulator: ProviderSimulator, client: httpx.Client) -> None:
    simulator.enqueue(Behaviour(tokens=5, drop_after=3), Behaviour(status=503), Behaviour(status=429))

    methods = client.get("/streaming-compare", params={"model": "sim-model"}).json()["methods"]

    assert methods["asgi"]["status"] == 200
    assert "connection to provider 'sim' failed" in methods["asgi"]["error"]
    assert methods["asgi"]["chunks"] == 4  # three events, then the error event
    assert methods["starlette"]["status"] == 503 and methods["starlette"]["error"]
    assert methods["non_streaming"]["status"] == 429 and methods["non_streaming"]["error"]


def test_compare_needs_a_key_when_keys_are_enforced_and_passes_it_on(tmp_path: Path) -> None:
    key = "sk-gw-compare-0123456789abcdef"
    config = keyed_routes_yaml(f"team: {{secret: {hash_secret(key)}}}\n")
    with (
        running_gateway(write_config(tmp_path, config)) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as http,
    ):
        refused = http.get("/streaming-compare", params={"model": "mock"})
        allowed = http.get(
            "/streaming-compare", params={"model": "mock"}, headers={"authorization": f"Bearer {key}"}
        )

    assert refused.status_code == 401
    assert allowed.status_code == 200
    assert [figures["status"] for figures in allowed.json()["methods"].values()] == [200, 200, 200]
    assert key not in allowed.text


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "model"),
        ({"model": "sim-model", "max_tokens": "0"}, "max_tokens"),
        ({"model": "x", "max_tokens": "a"}, "max_tokens"),
    ],
)
def test_compare_rejects_bad_parameters(client: httpx.Client, params: dict[str, str], param: str) -> None:
    answer = client.get("/streaming-compare", params=params)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == param


def test_received_body_figures() -> None:
    body = ReceivedBody(started=10.0, sse=True, status=200)
    body.feed(b"data: 1\n\ndata:", 10.1)
    body.feed(b" 2\n\n", 10.4)
    body.feed(b"data: 3\n\ndata: [DONE]\n\n", 10.5)
    body.finish(10.6)

    assert body.report() == {
        "status": 200,
        "chunks": 4,
        "bytes": 41,
        "reads": 3,
        "total_ms": 600.0,
        "ttfb_ms": 100.0,
        "avg_interval_ms": pytest.approx(400 / 3, abs=0.001),
        "max_interval_ms": 300.0,
        "error": None,
    }


def test_received_body_of_an_error_answer() -> None:
    body = ReceivedBody(started=0.0, sse=False, status=404)
    body.feed(b'{"error": {"message": "no such', 0.01)
    body.feed(b' model", "type": "invalid_request_error"}}', 0.02)
    body.finish(0.02)
    assert body.report()["error"] == "no such model"
    assert body.report()["chunks"] == 2
