"""Run the real gateway for end-to-end tests: in-process under uvicorn, or as a `python -m gateway` process.

    with ProviderSimulator() as sim:
        config_dir = write_config(tmp_path, sim_routes_yaml(sim.base_url))
        with running_gateway(config_dir) as gw:
            httpx.post(f"{gw.base_url}/v1/chat/completions", json={...}, timeout=CLIENT_TIMEOUT)

`running_gateway` serves the app on a free loopback port from a background thread (uvicorn with httptools,
as in production; lifespan on, so startup errors fail the test at once). `gateway_process` runs the CLI
in a subprocess, for signals (SIGHUP reload, SIGTERM drain) and restarts; its output goes to a log file
that tests can read. Both always shut the gateway down, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from gateway.api.app import create_app
from gateway.api.head_fence import HeadFenceProtocol

REPO_ROOT = Path(__file__).resolve().parents[2]

# Hang guards: every HTTP call of a test gets these, so a gateway that never answers fails the test
# quickly instead of waiting for pytest-timeout.
# A number, not an httpx.Timeout: the SDKs (openai 3, anthropic 2) build their clients on httpx2, which
# refuses httpx's Timeout objects; httpx and httpx2 both take a number.
CLIENT_TIMEOUT = 10.0
STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    """A loopback port free right now (for subprocesses, which must bind it themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, message: str = "") -> float:
    """Poll `predicate` until true and return the seconds it took; raise TimeoutError after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started >= timeout:
            raise TimeoutError(message or f"condition not met within {timeout}s")
        time.sleep(0.01)
    return time.monotonic() - started


# Route files.


def sim_routes_yaml(
    base_url: str, *, model: str = "sim-model", provider: str = "sim", health_check: bool = True
) -> str:
    """A route file with one OpenAI-compatible provider (the simulator at `base_url`) and route `model` to it;
    `routes:` comes last, so more routes can be appended (indented two spaces), then other sections.

    The key is `${SIM_API_KEY:-sim-key}` (route files only take keys from the environment).
    `health_check=False`: no probes, so the simulator records only the requests a test sends.
    """
    probes = "" if health_check else "\n    health_check: {enabled: false}"
    return (
        f"providers:\n  {provider}:\n    type: openai\n    base_url: {base_url}\n"
        f"    api_key: ${{SIM_API_KEY:-sim-key}}{probes}\n"
        f"routes:\n  {model}:\n    targets:\n      - provider: {provider}\n"
    )


def write_config(directory: Path, yaml_text: str, filename: str = "routes.yaml") -> Path:
    """Write `yaml_text` (dedented) as `directory/routes/filename`; return the config directory."""
    config_dir = directory / "routes"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / filename).write_text(textwrap.dedent(yaml_text), encoding="utf-8")
    return config_dir


# The gateway in this process.


@dataclass
class RunningGateway:
    base_url: str  # http://127.0.0.1:PORT (the OpenAI API is under /v1)
    port: int
    app: Any
    server: uvicorn.Server


@contextlib.contextmanager
def running_gateway(
    config_dir: str | Path | None = None,
    *,
    app: Any = None,
    reload: bool = False,
    **uvicorn_options: Any,
) -> Iterator[RunningGateway]:
    """Serve `app` (default: `create_app(config_dir, reload=reload)`) on a free loopback port.

    `uvicorn_options` go to `uvicorn.Config` (e.g. `http="h11"`, `timeout_graceful_shutdown=1`).
    """
    if app is None:
        if config_dir is None:
            raise ValueError("running_gateway needs a config_dir or an app")
        app = create_app(Path(config_dir), reload=reload)
    options: dict[str, Any] = {
        "log_level": "warning",
        "lifespan": "on",
        "http": HeadFenceProtocol,  # httptools with the head fence, as `gateway serve` runs it
        "ws": "none",  # no websockets import: its deprecation warnings would be errors in the server thread
        "timeout_graceful_shutdown": 5,
        **uvicorn_options,
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    failure: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # SystemExit from a failed lifespan startup, or a crash
            failure.append(exc)

    thread = threading.Thread(target=serve, name=f"gateway-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"gateway did not start on port {port}: {failure!r} (see the log above)")
            time.sleep(0.01)
        yield RunningGateway(base_url=f"http://127.0.0.1:{port}", port=port, app=app, server=server)
    finally:
        server.should_exit = True
        thread.join(options["timeout_graceful_shutdown"] + 5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5)
        sock.close()
    if failure and not isinstance(failure[0], SystemExit):
        raise RuntimeError("gateway server thread crashed") from failure[0]


# The gateway as a process.


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    base_url: str
    log_path: Path
    final_log: str | None = None  # kept when the process has ended and its log file is removed

    def log_text(self) -> str:
        """Everything the process wrote to stdout and stderr so far (also after it ended)."""
        if self.final_log is not None:
            return self.final_log
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def send_signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait_for_log(self, text: str, timeout: float = 10.0) -> None:
        wait_until(
            lambda: text in self.log_text(), timeout, f"{text!r} not in the gateway log:\n{self.log_text()}"
        )


def _answers_health(base_url: str) -> bool:
    try:
        httpx.get(f"{base_url}/health", timeout=1.0)
    except httpx.TransportError:
        return False
    return True


@contextlib.contextmanager
def gateway_process(
    config_dir: str | Path,
    *,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    port: int | None = None,
    stop_signal: int = signal.SIGTERM,
) -> Iterator[GatewayProcess]:
    """Run `python -m gateway serve --config DIR --port P --host 127.0.0.1 ...` until `/health` answers.

    On exit the process gets `stop_signal`, then SIGKILL if it has not ended within 10 seconds.
    `env` is added to the current environment.
    """
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "gateway",
        "serve",
        "--config",
        str(config_dir),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        *extra_args,
    ]
    log_fd, log_name = tempfile.mkstemp(prefix=f"gateway-{port}-", suffix=".log")
    process_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with os.fdopen(log_fd, "wb") as log:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=process_env, stdout=log, stderr=subprocess.STDOUT
        )
    running = GatewayProcess(process, port, f"http://127.0.0.1:{port}", Path(log_name))
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _answers_health(running.base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"gateway process did not start (exit {process.poll()}):\n{running.log_text()}"
                )
            time.sleep(0.05)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        running.final_log = running.log_text()
        running.log_path.unlink(missing_ok=True)
