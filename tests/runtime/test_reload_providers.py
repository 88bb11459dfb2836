"""Provider resources follow the config across reloads, seen from the provider simulator's side:
a request in flight finishes on its old pool, the old pool closes right after, and 100 reloads leave no
connection or socket behind."""

from __future__ import annotations

import contextlib
import os
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.harness import CLIENT_TIMEOUT, running_gateway, wait_until
from tests.support.reload_support import answer_text, write_atomically
from tests.support.simulator import Behaviour, ProviderSimulator


def sim_yaml(base_url: str, version: int) -> str:
    """Provider `sim` whose definition changes with `version` (a header), so each version gets a new pool."""
    return textwrap.dedent(
        f"""\
        providers:
          sim:
            type: openai
            base_url: {base_url}
            api_key: ${{SIM_API_KEY:-sim-key}}
            headers: {{x-config-version: "{version}"}}
            health_check: {{enabled: false}}
        routes:
          sim-model:
            targets: [{{provider: sim}}]
        """
    )


def body(*, stream: bool = False) -> dict[str, Any]:
    return {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "stream": stream}


def admin(client: httpx.Client) -> dict[str, Any]:
    return dict(client.get("/admin/config").json())


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed while listing
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def test_request_in_flight_finishes_on_its_old_pool_which_closes_after(tmp_path: Path) -> None:
    config = tmp_path / "routes" / "routes.yaml"
    config.parent.mkdir()
    with ProviderSimulator() as sim:
        config.write_text(sim_yaml(sim.base_url, 1))
        sim.enqueue(Behaviour(tokens=10, token_delay=0.1))  # a one-second stream
        with (
            running_gateway(config.parent, reload=True) as gateway,
            httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
        ):
            streamed: dict[str, Any] = {}

            def stream() -> None:
                try:
                    response = client.post("/v1/chat/completions", json=body(stream=True))
                    streamed["text"] = answer_text(response)
                except Exception as exc:  # checked below
                    streamed["error"] = exc
                streamed["ended"] = time.monotonic()

            thread = threading.Thread(target=stream)
            thread.start()
            wait_until(lambda: bool(sim.chat_requests and sim.chat_requests[0].sent_at), 5, "stream started")

            write_atomically(config, sim_yaml(sim.base_url, 2))
            wait_until(lambda: admin(client)["reload_count"] == 1, 2, "reload applied")
            assert "ended" not in streamed  # the reload happened mid-stream
            assert admin(client)["retiring_providers"] == ["sim"]  # old pool kept for the stream
            # A new request takes the new pool (the simulator sees the new header).
            assert client.post("/v1/chat/completions", json=body()).status_code == 200
            assert sim.chat_requests[-1].headers["x-config-version"] == "2"

            thread.join(10)
            assert "error" not in streamed, streamed
            assert streamed["text"].split() == [f"word{i}" for i in range(10)]  # whole, in order
            first = sim.chat_requests[0]
            assert first.headers["x-config-version"] == "1"
            sim.wait_for(lambda: first.outcome == "completed", timeout=2)
            assert len(first.sent_at) >= 10
            # Right after the stream, the retired pool is closed: its connection goes away.
            wait_until(lambda: admin(client)["retiring_providers"] == [], 2, "old pool closed")
            sim.wait_for(lambda: sim.open_connections == 1, 5, "only the new pool's connection is open")


def test_a_hundred_reloads_leak_no_pool_connection_or_socket(tmp_path: Path) -> None:
    config = tmp_path / "routes" / "routes.yaml"
    config.parent.mkdir()
    with ProviderSimulator() as sim:
        config.write_text(sim_yaml(sim.base_url, 0))
        with (
            running_gateway(config.parent, reload=True) as gateway,
            httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
        ):
            assert client.post("/v1/chat/completions", json=body()).status_code == 200
            sockets_before = open_sockets()
            for version in range(1, 101):
                write_atomically(config, sim_yaml(sim.base_url, version))
                wait_until(lambda v=version: admin(client)["reload_count"] == v, 3, f"reload {version}")
                for stream in (False, True):
                    response = client.post("/v1/chat/completions", json=body(stream=stream))
                    assert response.status_code == 200 and answer_text(response)
                assert sim.chat_requests[-1].headers["x-config-version"] == str(version)
            wait_until(lambda: admin(client)["retiring_providers"] == [], 3, "retired pools closed")
            # Every version opened its own connection, and every old one has been closed.
            assert sim.total_connections >= 101
            sim.wait_for(lambda: sim.open_connections <= 1, 5, "old pools' connections closed")
            wait_until(lambda: open_sockets() <= sockets_before, 5, "sockets back to where they were")
            print(
                f"\n100 reloads: {sim.total_connections} upstream connections opened, "
                f"{sim.open_connections} open at the end; sockets {sockets_before} -> {open_sockets()}"
            )
