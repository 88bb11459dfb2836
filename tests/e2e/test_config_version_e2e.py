"""`x-gateway-config-version` over real sockets: on every answer of every inbound API (JSON, SSE heads, the
gateway's own errors from 401 to 5xx, `/health` and the other GET endpoints), equal to the version
`/admin/config` serves, in the access line of the same request, and changed by a reload."""

from __future__ import annotations

import json
import logging
import os
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gateway.observe.access_log import ACCESS_LOGGER
from tests.support.access_support import bearer
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway, wait_until
from tests.support.resilience_support import NO_CHECKS
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(60)

HEADER = "x-gateway-config-version"
ADMIN, LIMITED = "sk-gw-admin-version-0123456789", "sk-gw-limited-version-0123456789"
CHAT = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}


def routes_yaml(simulator_url: str, *, tokens: int = 4) -> str:
    return textwrap.dedent(
        f"""\
        providers:
          mock: {{type: mock, mock: {{tokens: {tokens}}}}}
          sim:
            type: openai
            base_url: {simulator_url}
            api_key: ${{SIM_KEY:-sim-key}}
            health_check: {json.dumps(NO_CHECKS)}
        routes:
          mock:
            targets: [{{provider: mock}}]
          sim-model:
            retry: {{attempts: 1}}
            targets: [{{provider: sim}}]
        keys:
          ops: {{secret: "${{VERSION_ADMIN_KEY}}", role: admin}}
          limited: {{secret: "${{VERSION_LIMITED_KEY}}", limits: {{requests_per_minute: 1}}}}
        settings:
          limits: {{max_body_bytes: 4096}}
        """
    )


@pytest.fixture
def keyed_gateway(
    simulator: ProviderSimulator, write_routes: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningGateway, Path]]:
    monkeypatch.setenv("VERSION_ADMIN_KEY", ADMIN)
    monkeypatch.setenv("VERSION_LIMITED_KEY", LIMITED)
    config_dir = write_routes(routes_yaml(simulator.base_url))
    with running_gateway(config_dir, reload=True) as gateway:
        yield gateway, config_dir


def served_version(client: httpx.Client) -> str:
    answer = client.get("/admin/config", headers=bearer(ADMIN))
    assert answer.status_code == 200
    version: str = answer.json()["version"]
    assert answer.headers[HEADER] == version
    return version


def test_every_answer_carries_the_served_config_version(
    keyed_gateway: tuple[RunningGateway, Path],
    simulator: ProviderSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway, _ = keyed_gateway
    admin = bearer(ADMIN)
    with (
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
        caplog.at_level(logging.INFO, logger=ACCESS_LOGGER),
    ):
        version = served_version(client)
        assert len(version) >= 8
        answers: dict[str, httpx.Response] = {
            "health": client.get("/health"),
            "models": client.get("/v1/models", headers=admin),
            "metrics": client.get("/metrics", headers=admin),
            "unknown path 404": client.get("/v2/nothing"),
            "wrong method 405": client.get("/v1/chat/completions"),
            "no key 401": client.post("/v1/chat/completions", json=CHAT),
            "admin without key 401": client.get("/admin/config"),
            "chat json": client.post(
                "/v1/chat/completions", json=CHAT, headers={**admin, "x-request-id": "req-version"}
            ),
            "messages": client.post("/v1/messages", json={**CHAT, "max_tokens": 16}, headers=admin),
            "count tokens": client.post("/v1/messages/count_tokens", json=CHAT, headers=admin),
            "responses": client.post("/v1/responses", json={"model": "mock", "input": "hi"}, headers=admin),
            "embeddings": client.post("/v1/embeddings", json={"model": "mock", "input": "hi"}, headers=admin),
            "unknown model 404": client.post(
                "/v1/chat/completions", json={**CHAT, "model": "nope"}, headers=admin
            ),
            "malformed 400": client.post("/v1/chat/completions", content=b"{not json", headers=admin),
            "too large 413": client.post(
                "/v1/chat/completions", json={**CHAT, "pad": "x" * 8192}, headers=admin
            ),
        }
        assert client.post("/v1/chat/completions", json=CHAT, headers=bearer(LIMITED)).status_code == 200
        answers["limited 429"] = client.post("/v1/chat/completions", json=CHAT, headers=bearer(LIMITED))
        simulator.enqueue(Behaviour(status=503))
        answers["upstream 5xx"] = client.post(
            "/v1/chat/completions", json={**CHAT, "model": "sim-model"}, headers=admin
        )
        with client.stream(
            "POST", "/v1/chat/completions", json={**CHAT, "stream": True}, headers=admin
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            answers["chat stream"] = stream
            streamed = stream.read().decode()
        assert streamed.rstrip().endswith("data: [DONE]")
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses["chat json"] == statuses["chat stream"] == statuses["messages"] == 200
    assert statuses["no key 401"] == statuses["admin without key 401"] == 401
    assert statuses["unknown model 404"] == statuses["unknown path 404"] == 404
    assert (statuses["wrong method 405"], statuses["malformed 400"], statuses["too large 413"]) == (
        405,
        400,
        413,
    )
    assert statuses["limited 429"] == 429 and statuses["upstream 5xx"] >= 500
    assert statuses["health"] == statuses["count tokens"] == statuses["embeddings"] == 200
    labelled = {name: answer.headers.get_list(HEADER) for name, answer in answers.items()}
    assert labelled == {name: [version] for name in answers}, statuses
    # The access line of the same request says the same version, in its text and in its fields.
    [line] = [record for record in caplog.records if getattr(record, "request_id", "") == "req-version"]
    assert f"config_version={version}" in line.getMessage()
    assert line.access["config_version"] == version  # type: ignore[attr-defined]


def test_a_reload_changes_the_version_on_the_next_answers(
    keyed_gateway: tuple[RunningGateway, Path], simulator: ProviderSimulator
) -> None:
    gateway, config_dir = keyed_gateway
    with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
        before = served_version(client)
        (config_dir / "routes.yaml").write_text(routes_yaml(simulator.base_url, tokens=6), encoding="utf-8")
        wait_until(lambda: client.get("/health").headers[HEADER] != before, 10, "the reload was not served")
        after = served_version(client)
        assert after != before
        answer = client.post("/v1/chat/completions", json=CHAT, headers=bearer(ADMIN))
        assert answer.status_code == 200 and answer.headers[HEADER] == after
        status = client.get("/admin/config", headers=bearer(ADMIN)).json()
        [worker] = status["workers"]  # one process: its own entry
        assert (worker["pid"], worker["version"], worker["reload_count"]) == (os.getpid(), after, 1)
        assert status["converged"] is True
        loaded = metric(client, "gateway_config_last_reload_timestamp_seconds")
        assert loaded == pytest.approx(time.time(), abs=30)
        assert metric(client, "gateway_config_last_reload_successful") == 1

        # A rejected reload: the last good config keeps serving, and says so.
        (config_dir / "routes.yaml").write_text("routes: [not, a, mapping]\n", encoding="utf-8")
        wait_until(lambda: metric(client, "gateway_config_last_reload_successful") == 0, 10, "no rejection")
        assert client.get("/health").headers[HEADER] == after
        status = client.get("/admin/config", headers=bearer(ADMIN)).json()
        assert status["serving_last_good"] is True and status["workers"][0]["serving_last_good"] is True
        assert metric(client, "gateway_config_last_reload_timestamp_seconds") == loaded


def metric(client: httpx.Client, name: str) -> float:
    """One unlabelled sample of this single-process gateway's /metrics."""
    text = client.get("/metrics", headers=bearer(ADMIN)).text
    [line] = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])
