"""`gateway serve` without keys: open on loopback, refused elsewhere unless `auth: none`; `hash-key`."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from gateway.access.keys import hash_secret
from tests.support.access_support import keyed_routes_yaml
from tests.support.harness import REPO_ROOT, STARTUP_TIMEOUT, free_port, wait_until


def clean_env(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "API_KEY"}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def serve_command(config_dir: Path, host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "gateway", "serve", "--config", str(config_dir), "--host", host,
            "--port", str(port), "--no-reload"]  # fmt: skip


@contextlib.contextmanager
def serving(config_dir: Path, host: str, env: dict[str, str]) -> Iterator[str]:
    """Start `gateway serve` bound to `host`; yield its loopback URL once /health answers."""
    port = free_port()
    process = subprocess.Popen(
        serve_command(config_dir, host, port),
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, process.communicate()[0].decode()
        try:
            return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, STARTUP_TIMEOUT, "gateway did not start")
        yield base_url
    finally:
        process.terminate()
        process.communicate(timeout=15)


def test_no_keys_on_a_public_address_is_refused(write_routes: Callable[..., Path]) -> None:
    config_dir = write_routes(keyed_routes_yaml(""))
    result = subprocess.run(
        serve_command(config_dir, "0.0.0.0", free_port()),
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
    )
    assert result.returncode == 1
    assert "no gateway keys are configured" in result.stderr and "auth: none" in result.stderr


def test_no_keys_on_loopback_runs_open_and_says_so(write_routes: Callable[..., Path]) -> None:
    with serving(write_routes(keyed_routes_yaml("")), "127.0.0.1", clean_env()) as base_url:
        assert httpx.get(f"{base_url}/health", timeout=5).json()["auth"] == "open"


def test_auth_none_runs_open_on_a_public_address(write_routes: Callable[..., Path]) -> None:
    config_dir = write_routes(keyed_routes_yaml("", extra="auth: none\n"))
    with serving(config_dir, "0.0.0.0", clean_env()) as base_url:
        assert httpx.get(f"{base_url}/health", timeout=5).json()["auth"] == "none"


def test_keys_allow_a_public_address(write_routes: Callable[..., Path]) -> None:
    with serving(
        write_routes(keyed_routes_yaml("")), "0.0.0.0", clean_env(API_KEY="sk-cli-simple")
    ) as base_url:
        assert httpx.get(f"{base_url}/health", timeout=5).json()["auth"] == "keys"
        chat = httpx.post(
            f"{base_url}/v1/chat/completions", json={"model": "mock", "messages": []}, timeout=5
        )
        assert chat.status_code == 401


def test_hash_key_reads_stdin() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "hash-key"],
        input="sk-to-hash\n",
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and result.stdout.strip() == hash_secret("sk-to-hash")
