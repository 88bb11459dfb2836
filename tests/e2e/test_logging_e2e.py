"""The gateway as a process with LOG_FORMAT=json: every line is one JSON object, every line a request
causes carries its request id (also the lines written after the handler returned: the stream summary
and the per-piece DEBUG lines of both streamers, and the access line), and the access line has route,
provider, status, attempts, duration and tokens."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.harness import CLIENT_TIMEOUT, gateway_process, wait_until
from tests.support.resilience_support import provider, write_gateway_config
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(90)

MESSAGES = [{"role": "user", "content": "two words"}]


def log_lines(text: str) -> list[dict[str, Any]]:
    """Every log line as JSON; the one line the CLI prints itself (where it listens) is not a log line."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("gateway listening")]
    return [json.loads(line) for line in lines]


def lines_of(lines: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("request_id") == request_id]


def access_line(lines: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    [line] = [line for line in lines_of(lines, request_id) if line["logger"] == "gateway.access_log"]
    return line


def test_json_logs_carry_the_request_id_on_every_line_of_a_request(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    config_dir = write_gateway_config(
        write_routes,
        {"a": provider(simulator.base_url), "b": provider(simulator.base_url)},
        {"sim-model": {"targets": [{"provider": "a"}, {"provider": "b"}]}},
    )
    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG"}
    with (
        gateway_process(config_dir, env=env, extra_args=["--no-reload"]) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        body = {"model": "sim-model", "messages": MESSAGES}
        ok = client.post("/v1/chat/completions", json=body, headers={"x-request-id": "req-plain"})
        assert ok.status_code == 200
        simulator.enqueue(Behaviour(status=503))
        moved = client.post("/v1/chat/completions", json=body, headers={"x-request-id": "req-failover"})
        assert moved.headers["x-gateway-provider"] == "b"
        for streamer in ("true", "false"):  # the ASGI streamer, then the Starlette one
            headers = {"x-request-id": f"req-stream-{streamer}", "x-use-asgi-streaming": streamer}
            streamed = client.post("/v1/chat/completions", json={**body, "stream": True}, headers=headers)
            assert streamed.text.rstrip().endswith("data: [DONE]")
        missing = client.post(
            "/v1/chat/completions", json={**body, "model": "nope"}, headers={"x-request-id": "req-404"}
        )
        assert missing.status_code == 404
        with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as raw:  # uvicorn warns
            raw.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            raw.recv(1024)
        wait_until(lambda: gateway.log_text().count('"gateway.access_log"') >= 5, 5, "access lines")
        wait_until(lambda: '"uvicorn.error"' in gateway.log_text(), 5, "uvicorn's warning")
    lines = log_lines(gateway.log_text())

    plain = access_line(lines, "req-plain")
    usage = ok.json()["usage"]
    assert {name: plain[name] for name in ("route", "provider", "status", "attempts")} == {
        "route": "sim-model",
        "provider": "a",
        "status": 200,
        "attempts": 1,
    }
    assert plain["prompt_tokens"] == usage["prompt_tokens"]
    assert plain["completion_tokens"] == usage["completion_tokens"]
    assert 0 < plain["duration_ms"] < 10_000
    assert plain["level"] == "INFO"

    failover = lines_of(lines, "req-failover")
    assert any("fails over to provider b" in line["message"] for line in failover)
    assert access_line(lines, "req-failover")["failovers"] == 1
    assert access_line(lines, "req-failover")["attempts"] == 2

    for streamer in ("true", "false"):
        request_id = f"req-stream-{streamer}"
        mine = lines_of(lines, request_id)
        loggers = [line["logger"] for line in mine]
        # The summary and chunk lines are written by the relay after the handler returned.
        assert loggers.count("gateway.stream") >= 2, loggers
        assert any(line["message"].startswith(f"stream {request_id} ") for line in mine)
        assert any("piece=1 " in line["message"] for line in mine)
        streamed_access = access_line(lines, request_id)
        assert (streamed_access["kind"], streamed_access["stream_status"]) == ("stream", "ok")
        assert streamed_access["chunks"] >= 2

    [server_line] = [line for line in lines if line["logger"] == "uvicorn.error"]  # JSON like the rest
    assert server_line["level"] == "WARNING" and "request_id" not in server_line
    not_found = access_line(lines, "req-404")
    assert (not_found["status"], not_found["route"], not_found["error"]) == (404, None, "model_not_found")
    # No line of a request lost its id: every piece line names its stream and carries the same id.
    for line in lines:
        if line["logger"] == "gateway.stream" and " piece=" in line["message"]:
            assert line["message"].split()[1] == line["request_id"]
