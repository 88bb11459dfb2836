"""SIGHUP reloads a `gateway serve` process; with `--no-reload` it is the only thing that does."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.harness import CLIENT_TIMEOUT, gateway_process, wait_until
from tests.support.reload_support import (
    BROKEN_KINDS,
    ROUTES_YAML,
    answer_text,
    chat_body,
    provider_yaml,
    write_in_place,
)


def served_text(client: httpx.Client) -> str:
    response = client.post("/v1/chat/completions", json=chat_body())
    assert response.status_code == 200, response.text
    return answer_text(response)


def admin(client: httpx.Client) -> dict[str, Any]:
    return dict(client.get("/admin/config").json())


def test_sighup_reloads_when_watching_is_off(tmp_path: Path) -> None:
    config_dir = tmp_path / "routes"
    config_dir.mkdir()
    (config_dir / "routes.yaml").write_text(ROUTES_YAML)
    providers = config_dir / "providers.yaml"
    providers.write_text(provider_yaml("v1"))
    with (
        gateway_process(config_dir, extra_args=["--no-reload"]) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        status = admin(client)
        assert (status["watching"], status["sighup"]) == (False, True)
        assert "v1" in served_text(client)

        write_in_place(providers, provider_yaml("v2"))
        time.sleep(1.5)  # far longer than the watcher would take: nothing is watching
        assert "v1" in served_text(client) and admin(client)["reload_attempts"] == 0

        gateway.send_signal(signal.SIGHUP)
        started = time.monotonic()
        wait_until(lambda: "v2" in served_text(client), 5, "SIGHUP did not reload")
        assert time.monotonic() - started < 2.0  # promptly, on the signal
        assert admin(client)["last_reload"]["trigger"] == "SIGHUP"

        write_in_place(providers, BROKEN_KINDS["schema"]("bad-3"))
        gateway.send_signal(signal.SIGHUP)
        wait_until(lambda: admin(client)["rejected_count"] == 1, 2, "rejection not reported")
        assert "v2" in served_text(client)
        gateway.wait_for_log("config reload (SIGHUP) rejected")
        gateway.wait_for_log(f"{providers}:5:20: error: providers.m.mock.tokens must be an integer")
        assert gateway.process.poll() is None  # SIGHUP's default action would have ended the process
