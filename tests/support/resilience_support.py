"""Shared pieces of the resilience end-to-end tests (no tests here): route files in front of simulators,
and a chat call that returns the response with the gateway's resilience headers.

Route files are written as JSON (valid YAML), so each test states its whole policy as one Python dict.
Health checks are off unless a test turns them on, so a background probe never changes what a test sees.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.harness import free_port

MODEL = "sim-model"
NO_CHECKS = {"enabled": False}


def provider(base_url: str, **fields: Any) -> dict[str, Any]:
    """An OpenAI-compatible provider at `base_url`, health checks off unless `health_check` is given."""
    return {
        "type": "openai",
        "base_url": base_url,
        "api_key": "${SIM_KEY:-sim-key}",
        "health_check": NO_CHECKS,
        **fields,
    }


def dead_url() -> str:
    """A loopback URL nothing listens on: connecting is refused."""
    return f"http://127.0.0.1:{free_port()}/v1"


def route(*providers: str, **fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "targets": [{"provider": name} for name in providers], **fields}


def write_gateway_config(
    write_routes: Callable[..., Path], providers: dict[str, Any], routes: dict[str, Any]
) -> Path:
    return write_routes(json.dumps({"providers": providers, "routes": routes}, indent=2))


def chat(client: httpx.Client, *, stream: bool = False, **body: Any) -> httpx.Response:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **body}
    if stream:
        payload["stream"] = True
    return client.post("/v1/chat/completions", json=payload)


def attempts(response: httpx.Response) -> int:
    return int(response.headers["x-gateway-attempts"])


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]
