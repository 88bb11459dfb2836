"""What an operator reads: JSON logs that are one object per line from start to exit, "listening" only
once the port is bound, `unknown` for a provider no health check has answered yet, and a stream that
failed mid-way logged at WARNING."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.support.harness import (
    CLIENT_TIMEOUT,
    REPO_ROOT,
    free_port,
    gateway_process,
    running_gateway,
    sim_routes_yaml,
    wait_until,
    write_config,
)
from tests.support.simulator import Behaviour, ProviderSimulator

HELLO = [{"role": "user", "content": "Hello"}]


def test_json_logs_are_one_object_per_line_from_startup_to_exit(
    simulator: ProviderSimulator, tmp_path: Path
) -> None:
    config_dir = write_config(tmp_path, sim_routes_yaml(simulator.base_url))
    simulator.enqueue(Behaviour(), Behaviour(tokens=10, drop_after=3))
    env = {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    with gateway_process(config_dir, extra_args=["--no-reload"], env=env) as gateway:
        with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
            body = {"model": "sim-model", "messages": HELLO}
            assert client.post("/v1/chat/completions", json=body).status_code == 200
            with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as stream:
                text = stream.read().decode()
            assert '"error"' in text and "[DONE]" not in text  # failed mid-way, after its first event
        write_config(tmp_path, sim_routes_yaml(simulator.base_url, model="renamed-model"))
        gateway.send_signal(signal.SIGHUP)
        gateway.wait_for_log("config reloaded")
        gateway.send_signal(signal.SIGTERM)
        assert gateway.process.wait(10) == 0

    lines = [line for line in gateway.log_text().splitlines() if line.strip()]
    entries: list[dict[str, Any]] = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(
                f"not a JSON line: {line!r}\n--- the whole log:\n{gateway.log_text()}"
            ) from None
    messages = [entry["message"] for entry in entries]
    assert any(message.startswith("gateway listening on http://127.0.0.1:") for message in messages)
    assert any(message.startswith("draining: ") for message in messages)
    assert any(message.startswith("drained: ") for message in messages)
    access = [entry for entry in entries if entry["logger"] == "gateway.access_log"]
    assert [(entry["kind"], entry["level"]) for entry in access] == [
        ("complete", "INFO"),
        ("stream", "WARNING"),
    ]
    assert access[1]["stream_status"] == "error"


def test_a_busy_port_fails_clearly_and_never_says_listening(
    simulator: ProviderSimulator, tmp_path: Path
) -> None:
    config_dir = write_config(tmp_path, sim_routes_yaml(simulator.base_url))
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        command = [sys.executable, "-m", "gateway", "serve", "--config", str(config_dir), "--port", str(port)]
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"cannot listen on 127.0.0.1:{port}" in output
    assert "in use" in output.lower()
    assert "listening" not in output


def test_a_provider_no_check_has_answered_reads_unknown_and_still_serves(
    simulator: ProviderSimulator, tmp_path: Path
) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    routes = f"""\
providers:
  down:
    type: openai
    base_url: {unreachable}
    api_key: ${{SIM_API_KEY:-sim-key}}
    health_check: {{interval: 3600, unhealthy_threshold: 2}}
routes:
  r:
    targets: [{{provider: down}}]
"""
    config_dir = write_config(tmp_path, routes)
    with (
        running_gateway(config_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):

        def checked() -> bool:
            return client.get("/health").json()["providers"]["down"]["health_check"]["last_check"] is not None

        wait_until(checked, 10, "the first probe never ran")
        report = client.get("/health")

    body = report.json()
    down = body["providers"]["down"]
    assert down["state"] == "unknown"  # one failed probe of two: no verdict yet (it read "healthy")
    assert down["health_check"]["consecutive_failures"] == 1
    assert "failed 1 times so far" in down["reason"]
    assert report.status_code == 200  # unknown targets still make a servable route
    assert body["status"] == "ok" and body["servable_routes"] == 1
