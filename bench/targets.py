"""The things measured: direct to the mock, nginx, LiteLLM and our gateway (one per streamer).

Each target knows how to write its config into a temp dir, the command that runs it in the foreground
(pinned by the runner), and the URL, model and headers a client uses. A target whose program is missing
is reported as skipped, never silently dropped.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import textwrap
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.load_client import chat_body
from bench.processes import Service, free_port, pinned, wait_for_port

REPO = Path(__file__).resolve().parent.parent
LITELLM_BIN = REPO / "bench" / ".venv-litellm" / "bin" / "litellm"
LITELLM_MASTER_KEY = "sk-bench-master-key"  # a throwaway key for a loopback-only benchmark proxy
MODEL = "bench"


@dataclass(slots=True)
class Target:
    name: str  # direct | nginx | litellm | gateway-asgi | gateway-starlette
    label: str
    port: int = 0
    path: str = "/v1/chat/completions"
    headers: list[str] = field(default_factory=list)
    service: Service | None = None
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def pid(self) -> int | None:
        return self.service.pid if self.service is not None else None


def missing_reason(name: str) -> str | None:
    """Why a target cannot run here, or None."""
    if name == "nginx" and shutil.which("nginx") is None:
        return "nginx is not installed (apt-get install -y nginx)"
    if name == "litellm" and not LITELLM_BIN.exists():
        return f"LiteLLM is not installed in {LITELLM_BIN.parent.parent} (see bench/README.md)"
    if name.startswith("gateway") and importlib.util.find_spec("gateway") is None:
        return f"the gateway package is not importable by {sys.executable} (pip install -e .)"
    return None


def nginx_conf(workdir: Path, port: int, mock_port: int) -> str:
    return textwrap.dedent(f"""\
        worker_processes 1;
        pid {workdir}/nginx.pid;
        error_log {workdir}/nginx-error.log warn;
        events {{ worker_connections 8192; }}
        http {{
            access_log off;
            client_body_temp_path {workdir}/client_body;
            proxy_temp_path {workdir}/proxy_temp;
            fastcgi_temp_path {workdir}/fastcgi_temp;
            uwsgi_temp_path {workdir}/uwsgi_temp;
            scgi_temp_path {workdir}/scgi_temp;
            upstream mock {{ server 127.0.0.1:{mock_port}; keepalive 256; }}
            server {{
                listen 127.0.0.1:{port} backlog=4096;
                location / {{
                    proxy_pass http://mock;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_buffering off;
                    proxy_read_timeout 300s;
                }}
            }}
        }}
        """)


def litellm_conf(mock_port: int) -> str:
    return textwrap.dedent(f"""\
        model_list:
          - model_name: {MODEL}
            litellm_params:
              model: openai/{MODEL}
              api_base: http://127.0.0.1:{mock_port}/v1
              api_key: sk-mock-upstream
        litellm_settings:
          drop_params: true
          set_verbose: false
        general_settings:
          master_key: os.environ/LITELLM_MASTER_KEY
        """)


def gateway_conf(mock_port: int, streamer: str, keepalive: int | None = None) -> str:
    # The provider's defaults, as a new user writes it (no pool block: 2,048 connections fit 1,000
    # streams); only health checks are off, so no probe lands in a measurement.
    keep = f"\n            pool:\n              max_keepalive_connections: {keepalive}" if keepalive else ""
    return textwrap.dedent(f"""\
        providers:
          mock-upstream:
            type: openai
            base_url: http://127.0.0.1:{mock_port}/v1
            health_check:
              enabled: false{keep}
        routes:
          {MODEL}:
            model: {MODEL}
            streaming: {streamer}
            targets:
              - provider: mock-upstream
        """)


def build_target(name: str, workdir: Path, mock_port: int, cores: str | None) -> Target:
    """The target `name`, configured to proxy to the mock on `mock_port`; not started yet."""
    if name == "direct":
        return Target(name, "direct to mock", port=mock_port)
    port = free_port()
    log = workdir / f"{name}.log"
    if name == "nginx":
        conf = workdir / "nginx.conf"
        conf.write_text(nginx_conf(workdir, port, mock_port))
        command = ["nginx", "-p", str(workdir), "-c", str(conf), "-g", "daemon off;"]
        return Target(name, "nginx proxy_pass", port, service=Service(name, pinned(command, cores), log))
    if name == "litellm":
        conf = workdir / "litellm.yaml"
        conf.write_text(litellm_conf(mock_port))
        command = [
            str(LITELLM_BIN),
            "--config",
            str(conf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--num_workers",
            "1",
        ]
        env = {
            "LITELLM_MASTER_KEY": LITELLM_MASTER_KEY,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_LOG": "ERROR",
            "LITELLM_TELEMETRY": "False",
        }
        service = Service(name, pinned(command, cores), log, env=env, cwd=workdir)
        return Target(
            name,
            "LiteLLM proxy",
            port,
            headers=[f"authorization: Bearer {LITELLM_MASTER_KEY}"],
            service=service,
        )
    if name.startswith("gateway-"):
        # `gateway-asgi` or, for experiments, `gateway-asgi@aiohttp+warning` (see gateway_variant.py)
        streamer, _, variant = name.removeprefix("gateway-").partition("@")
        config_dir = workdir / name
        config_dir.mkdir(exist_ok=True)
        keepalive = 100 if "keepalive100" in variant.split("+") else None
        (config_dir / "bench.yaml").write_text(gateway_conf(mock_port, streamer, keepalive))
        program = ["-m", "gateway"]
        if variant:
            program = [str(REPO / "bench" / "gateway_variant.py"), "--variant", variant]
        command = [sys.executable, *program, "serve", "--config", str(config_dir), "--port", str(port)]
        label = f"gateway ({streamer} streamer{', ' + variant if variant else ''})"
        # WARNING, for parity with nginx's `access_log off` and LiteLLM's LITELLM_LOG=ERROR: no access
        # line per request (the `info` variant keeps it, to show its cost).
        env = {"LOG_LEVEL": "WARNING"}
        service = Service(name, pinned(command, cores), log, env=env, cwd=REPO)
        return Target(name, label, port, service=service)
    raise ValueError(f"unknown target {name!r}")


def start(target: Target, timeout: float = 180.0) -> None:
    """Start the target's process and wait until a real chat completion comes back through it."""
    if target.service is None:
        wait_until_answers(target, timeout)
        return
    began = time.monotonic()
    target.service.start()
    wait_for_port(target.service, target.port, timeout)
    wait_until_answers(target, timeout - (time.monotonic() - began))
    target.startup_s = time.monotonic() - began


def wait_until_answers(target: Target, timeout: float) -> None:
    body = chat_body(MODEL, stream=False)
    headers = {"content-type": "application/json"}
    for header in target.headers:
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if target.service is not None and not target.service.alive():
            raise RuntimeError(f"{target.name} exited:\n{target.service.log_tail()}")
        request = urllib.request.Request(target.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.2)
    tail = target.service.log_tail() if target.service is not None else ""
    raise RuntimeError(
        f"{target.name} did not answer a chat completion within {timeout:.0f}s ({last})\n{tail}"
    )


def mock_service(workdir: Path, port: int, cores: str | None) -> Service:
    command = [sys.executable, "-m", "bench.mock_upstream", "--port", str(port)]
    return Service("mock", pinned(command, cores), workdir / "mock.log", cwd=REPO)
