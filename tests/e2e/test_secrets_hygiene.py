"""No key material in logs, error bodies, /stats, /admin/config or /health, over a full request cycle
with errors, with the gateway as a process logging at DEBUG (everything it writes is captured)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx

from gateway.access.keys import hash_secret
from tests.support.access_support import CHAT_BODY, bearer, keyed_routes_yaml
from tests.support.harness import CLIENT_TIMEOUT, gateway_process, sim_routes_yaml
from tests.support.simulator import Behaviour, ProviderSimulator

TEAM_KEY = "sk-gw-team-SECRET-7f3a9c"
ADMIN_KEY = "sk-gw-admin-SECRET-2b8e41"
WRONG_KEY = "sk-gw-wrong-SECRET-90d1e5"
PROVIDER_KEY = "sk-provider-SECRET-55aa01"


def material() -> dict[str, str]:
    """Everything that must never be shown: the keys, and their full digests in hex."""
    found = {
        "team key": TEAM_KEY,
        "admin key": ADMIN_KEY,
        "wrong key": WRONG_KEY,
        "provider key": PROVIDER_KEY,
    }
    for name, key in list(found.items()):
        found[f"{name} digest"] = hashlib.sha256(key.encode()).hexdigest()
    found["secret marker"] = "SECRET"
    return found


def test_a_full_request_cycle_leaves_no_key_material_anywhere(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    write_routes(sim_routes_yaml(simulator.base_url), "10-sim.yaml")
    keys = f"""\
    team:
      secret: ${{GW_TEAM_KEY}}
      models: [sim-model, mock]
      limits: {{requests_per_minute: 5, tokens_per_minute: 100000}}
    admin: {{secret: {hash_secret(ADMIN_KEY)}, role: admin}}
    """
    config_dir = write_routes(
        keyed_routes_yaml(keys, settings_yaml="stats_flush_interval: 0.05\n"), "20.yaml"
    )
    simulator.enqueue(Behaviour(), Behaviour(), Behaviour(status=500), Behaviour(status=401))
    env = {"GW_TEAM_KEY": TEAM_KEY, "SIM_API_KEY": PROVIDER_KEY, "LOG_LEVEL": "DEBUG"}
    shown: list[str] = []  # every body and header the gateway sent back
    with gateway_process(config_dir, env=env) as gateway:
        with httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
            sim = {**CHAT_BODY, "model": "sim-model"}
            calls: list[tuple[str, str, dict[str, object] | None, dict[str, str], int]] = [
                ("POST", "/v1/chat/completions", sim, bearer(TEAM_KEY), 200),
                ("POST", "/v1/chat/completions", {**sim, "stream": True}, {"x-api-key": TEAM_KEY}, 200),
                ("POST", "/v1/chat/completions", sim, bearer(TEAM_KEY), 500),  # upstream error
                ("POST", "/v1/chat/completions", sim, bearer(TEAM_KEY), 502),  # upstream refused its key
                ("POST", "/v1/chat/completions", CHAT_BODY, bearer(WRONG_KEY), 401),
                ("POST", "/v1/chat/completions", {**CHAT_BODY, "model": "other"}, bearer(TEAM_KEY), 403),
                ("POST", "/v1/chat/completions", {**CHAT_BODY, "model": "nope"}, bearer(TEAM_KEY), 404),
                ("POST", "/v1/chat/completions", {"model": "mock"}, bearer(TEAM_KEY), 400),
                ("POST", "/v1/chat/completions", CHAT_BODY, bearer(TEAM_KEY), 200),
                ("POST", "/v1/chat/completions", CHAT_BODY, bearer(TEAM_KEY), 429),
                ("GET", "/stats", None, bearer(WRONG_KEY), 401),
                ("GET", "/stats", None, bearer(TEAM_KEY), 403),
                ("GET", "/stats", None, bearer(ADMIN_KEY), 200),
                ("GET", "/admin/config", None, bearer(ADMIN_KEY), 200),
                ("GET", "/health", None, {}, 200),
            ]
            for method, path, body, headers, status in calls:
                response = client.request(method, path, json=body, headers=headers)
                assert response.status_code == status, (path, response.text)
                shown.append(response.text)
                shown.append(repr(dict(response.headers)))
        assert "sim-model" in shown[-6]  # /stats did count the requests it must not leak keys from
    log = gateway.log_text()
    assert "auth: keys" in log and "DEBUG" in log  # the log did capture the run, at DEBUG
    for name, value in material().items():
        assert value not in log, f"{name} in the gateway log"
        for text in shown:
            assert value not in text, f"{name} in an answer: {text[:300]}"
