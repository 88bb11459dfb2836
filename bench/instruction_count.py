"""Instructions the gateway executes per request, counted by callgrind: a figure that does not move with
the machine's load, for before/after comparisons of the hot path on a shared machine.

    .venv/bin/python bench/instruction_count.py                     # chat JSON, 300 requests
    .venv/bin/python bench/instruction_count.py --stream --requests 200
    .venv/bin/python bench/instruction_count.py --repo /work/wt-old # the same, on another checkout

The gateway runs under `valgrind --tool=callgrind` (about 50x slower, so few requests) with the benchmark's
route file, proxying to the mock upstream (run normally). After a warm-up the counters are zeroed
(`callgrind_control --zero`), the requests are sent one at a time over one keep-alive connection, and the
counters dumped: instructions / requests is the figure, the event loop's share of each request included.
Same binary, inputs and environment give the same count within a fraction of a percent.
"""

from __future__ import annotations

import argparse
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

TOTAL = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--stream", action="store_true", help="20-token streams instead of JSON answers")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose gateway is measured")
    parser.add_argument("--streamer", default="asgi")
    parser.add_argument("--keep", type=Path, help="copy callgrind's dump here (for callgrind_annotate)")
    args = parser.parse_args(argv)
    if subprocess.run(["which", "valgrind"], capture_output=True).returncode != 0:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    count = measure(
        args.repo.resolve(),
        args.requests,
        args.warmup,
        stream=args.stream,
        streamer=args.streamer,
        keep=args.keep,
    )
    kind = "stream" if args.stream else "json"
    print(
        f"{kind}: {count / args.requests:,.0f} instructions per request "
        f"({args.requests} requests, {args.repo})"
    )
    return 0


def measure(repo: Path, requests: int, warmup: int, *, stream: bool, streamer: str, keep: Path | None) -> int:
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
        env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONPATH": str(repo)}
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
        command += [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
        gateway = subprocess.Popen(
            command, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_until_listening(mock_port, mock, 30)
            wait_until_listening(port, gateway, 300)
            body = chat_body(MODEL, stream=stream, tokens=20)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                send(client, body, warmup)
                subprocess.run(
                    ["callgrind_control", "--zero", str(gateway.pid)], check=True, capture_output=True
                )
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
            gateway.terminate()
            mock.terminate()
            gateway.wait(60)
            mock.wait(10)


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


if __name__ == "__main__":
    raise SystemExit(main())
