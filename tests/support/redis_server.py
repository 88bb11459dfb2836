"""A private `redis-server` for the Redis tests: started once per session on a free loopback port.

The tests never touch a Redis that may already run on 6379: they get this one's URL from the
`redis_server` fixture. Without the binary they skip, with the reason shown by `pytest -rs`.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from tests.support.harness import free_port

STARTUP_TIMEOUT = 20.0  # seconds; generous, the machine may be busy
NOT_INSTALLED = "redis-server not installed: the Redis tests need it on PATH (apt-get install redis-server)"


@dataclass(frozen=True)
class RedisServer:
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def wait_for_ping(process: subprocess.Popen[bytes], port: int, timeout: float = STARTUP_TIMEOUT) -> None:
    """Return once the server answers PING; fail with its output if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"redis-server exited with {process.returncode}:\n{output}")
        with contextlib.suppress(redis.ConnectionError), redis.Redis(port=port, socket_timeout=1) as client:
            if client.ping():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"redis-server on port {port} did not answer PING within {timeout} s")
        time.sleep(0.05)


@contextlib.contextmanager
def running_redis_server(binary: str, port: int | None = None) -> Iterator[RedisServer]:
    """A redis-server of our own (on `port`, else a free one): loopback only, no persistence, its files
    in a temp dir; stopped after."""
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="gw-test-redis-") as workdir:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", workdir]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=workdir)
        try:
            wait_for_ping(process, port)
            yield RedisServer(port)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's own redis-server; skips the test when the binary is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(NOT_INSTALLED)
    with running_redis_server(binary) as server:
        yield server
