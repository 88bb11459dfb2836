"""Keys follow a hot reload (SIGHUP), and a reload cannot silently turn enforced keys off."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx

from gateway.access.keys import hash_secret
from tests.support.access_support import CHAT_BODY, bearer, keyed_routes_yaml
from tests.support.harness import CLIENT_TIMEOUT, gateway_process, wait_until


def test_keys_follow_reloads(write_routes: Callable[..., Path]) -> None:
    team = f"team: {{secret: {hash_secret('sk-reload-team')}}}\n"
    newcomer = f"newcomer: {{secret: {hash_secret('sk-reload-new')}, models: [other]}}\n"
    config_dir = write_routes(keyed_routes_yaml(team))
    with gateway_process(config_dir, extra_args=["--no-reload"]) as gateway:

        def status(key: str | None, model: str = "mock") -> int:
            headers = bearer(key) if key else {}
            body = {**CHAT_BODY, "model": model}
            url = f"{gateway.base_url}/v1/chat/completions"
            return httpx.post(url, json=body, headers=headers, timeout=CLIENT_TIMEOUT).status_code

        def reload_with(text: str) -> None:
            write_routes(text)
            gateway.send_signal(signal.SIGHUP)

        assert (status("sk-reload-team"), status("sk-reload-new")) == (200, 401)

        reload_with(keyed_routes_yaml(team + newcomer))
        wait_until(lambda: status("sk-reload-new", "other") == 200, 10, "the new key never worked")
        assert status("sk-reload-new", "mock") == 403  # with its allowlist
        assert status("sk-reload-team") == 200

        reload_with(keyed_routes_yaml(""))  # no keys left: the gateway must not become open
        gateway.wait_for_log("keeping the previous keys")
        assert status(None) == 401 and status("sk-reload-team") == 200

        reload_with(keyed_routes_yaml("", extra="auth: none\n"))  # open on purpose
        wait_until(lambda: status(None) == 200, 10, "auth: none was not applied")
        assert httpx.get(f"{gateway.base_url}/health", timeout=CLIENT_TIMEOUT).json()["auth"] == "none"
