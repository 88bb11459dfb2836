"""Instructions the gateway executes per request, counted by callgrind: a figure that does not move with
the machine's load, for before/after comparisons of the hot path on a shared machine.

    .venv/bin/python bench/instruction_count.py                     # chat JSON, 300 requests
    .venv/bin/python bench/instruction_count.py --stream --requests 200
    .venv/bin/python bench/instruction_count.py --repo /work/wt-old # the same, on another checkout
    .venv/bin/python bench/instruction_count.py --burst 200 --requests 600  # streams 200 at a time

The gateway runs under `valgrind --tool=callgrind` (about 50x slower, so few requests) with the benchmark's
route file, proxying to the mock upstream (run normally). After a warm-up the counters are zeroed
(`callgrind_control --zero`), the requests are sent one at a time over one keep-alive connection, and the
counters dumped: instructions / requests is the figure, the event loop's share of each request included.
Same binary, inputs and environment give the same count within a fraction of a percent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_client import chat_body
from bench.processes import free_port
from bench.targets import MODEL, REPO, gateway_conf

# The variants of bench/tracing_overhead.py (the SDK's own environment variables).
TRACING = {
    "on": {"OTEL_TRACES_EXPORTER": "otlp"},
    "on@10%": {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    "on@0%": {  # what an unsampled request costs
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0",
    },
}
TOTAL = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--stream", action="store_true", help="20-token streams instead of JSON answers")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose gateway is measured")
    parser.add_argument("--streamer", default="asgi")
    parser.add_argument("--tokens", type=int, help="tokens per stream (default 20, 1 in a burst)")
    parser.add_argument(
        "--burst",
        type=int,
        default=0,
        help="send 1-token streams this many at once, each on a new connection (the capacity burst's setup)",
    )
    parser.add_argument(
        "--tracing",
        choices=["on", "on@10%", "on@0%"],
        help="export traces over OTLP/HTTP to a sink: every request, 1 in 10, or none (the unsampled cost)",
    )
    parser.add_argument(
        "--prompt-bytes", type=int, default=0, help="add this much text to each prompt (a real prompt's size)"
    )
    parser.add_argument("--keep", type=Path, help="copy callgrind's dump here (for callgrind_annotate)")
    args = parser.parse_args(argv)
    if subprocess.run(["which", "valgrind"], capture_output=True).returncode != 0:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    count = measure(
        args.repo.resolve(),
        args.requests,
        args.warmup,
        stream=args.stream or args.burst > 0,
        streamer=args.streamer,
        keep=args.keep,
        tracing=args.tracing,
        burst=args.burst,
        tokens=args.tokens or (1 if args.burst else 20),
        prompt_bytes=args.prompt_bytes,
    )
    kind = f"burst of {args.burst}" if args.burst else "stream" if args.stream else "json"
    if args.tracing:
        kind += f", tracing {args.tracing}"
    if args.prompt_bytes:
        kind += f", prompts of {args.prompt_bytes} more bytes"
    print(
        f"{kind}: {count / args.requests:,.0f} instructions per request "
        f"({args.requests} requests, {args.repo})"
    )
    return 0


def measure(
    repo: Path,
    requests: int,
    warmup: int,
    *,
    stream: bool,
    streamer: str,
    keep: Path | None,
    tracing: str | None = None,
    burst: int = 0,
    tokens: int = 20,
    prompt_bytes: int = 0,
) -> int:
    with tempfile.TemporaryDirectory(prefix="gateway-instr-") as tmp:
        workdir = Path(tmp)
        mock_port, port = free_port(), free_port()
        mock = subprocess.Popen(
            [sys.executable, "-m", "bench.mock_upstream", "--port", str(mock_port)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        config = workdir / "routes"
        config.mkdir()
        (config / "bench.yaml").write_text(gateway_conf(mock_port, streamer))
        out = workdir / "callgrind.out"
        # A fixed hash seed: dict and set layouts (so probe counts) the same in every run.
        env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(repo), "PYTHONHASHSEED": "0"}
        sink = None
        if tracing is not None:
            sink_port = free_port()
            sink = subprocess.Popen(
                [sys.executable, "-m", "bench.tracing_overhead", "--sink", str(sink_port)], cwd=REPO
            )
            env.update(TRACING[tracing], OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{sink_port}")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
        command += [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
        gateway = subprocess.Popen(
            command, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_until_listening(mock_port, mock, 30)
            wait_until_listening(port, gateway, 300)
            body = chat_body(MODEL, stream=stream, tokens=tokens, prompt_bytes=prompt_bytes)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                send(client, body, warmup)
                subprocess.run(
                    ["callgrind_control", "--zero", str(gateway.pid)], check=True, capture_output=True
                )
                if burst:
                    asyncio.run(send_bursts(f"http://127.0.0.1:{port}", body, requests, burst))
                else:
                    send(client, body, requests)
                subprocess.run(
                    ["callgrind_control", "--dump", str(gateway.pid)], check=True, capture_output=True
                )
            time.sleep(0.5)
            dumps = sorted(workdir.glob("callgrind.out*"), key=lambda path: path.stat().st_mtime)
            found = TOTAL.search(dumps[-1].read_text())
            if found is None:
                raise RuntimeError(f"no total in {dumps[-1]}")
            if keep is not None:
                shutil.copyfile(dumps[-1], keep)
            return int(found.group(1))
        finally:
            for process in (gateway, mock, sink):
                if process is not None:
                    process.terminate()
                    process.wait(60)


def wait_until_listening(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} during startup")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:g} s")


def send(client: httpx.Client, body: bytes, count: int) -> None:
    headers = {"content-type": "application/json"}
    for _ in range(count):
        response = client.post("/v1/chat/completions", content=body, headers=headers)
        response.read()
        if response.status_code != 200:
            raise RuntimeError(f"gateway answered {response.status_code}: {response.text[:200]}")


async def send_bursts(url: str, body: bytes, count: int, size: int) -> None:
    """`count` requests, `size` at once, each burst on new connections (a new client per burst)."""
    headers = {"content-type": "application/json"}
    for start in range(0, count, size):
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

            async def one() -> None:
                response = await client.post("/v1/chat/completions", content=body, headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(f"gateway answered {response.status_code}: {response.text[:200]}")

            await asyncio.gather(*(one() for _ in range(min(size, count - start))))


if __name__ == "__main__":
    raise SystemExit(main())
