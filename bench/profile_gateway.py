"""Profile the gateway under benchmark load with py-spy and say where its CPU time goes.

    .venv/bin/python bench/profile_gateway.py http      # wrk, non-streaming, c=50
    .venv/bin/python bench/profile_gateway.py stream    # 20-token streams, c=50
    .venv/bin/python bench/profile_gateway.py stream200 # 200 streams at 20 ms per token (50 tokens)
    .venv/bin/python bench/profile_gateway.py stream --streamer starlette --seconds 20

Same pinning as the benchmark (mock, load generator and py-spy on core 0, the gateway on core 1). py-spy
(`.venv/bin/pip install py-spy`; a benchmark tool, not a dependency) pauses the process for each sample,
since non-blocking sampling tears stacks, and keeps only the thread holding the GIL (idle pool threads
would otherwise show up as busy). Prints the functions with the most samples
on top of the stack (self) and the share of samples under each layer (inclusive), and keeps the raw
collapsed stacks (bench/results/profile-*.txt) for a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import wrk
from bench.load_client import chat_body
from bench.processes import free_port, pinned, wait_for_port
from bench.run import prepare_process
from bench.targets import MODEL, REPO, build_target, mock_service, start

FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
# Layers by file path, most specific first; the name says which part of the request it is.
LAYERS = (
    ("gateway/api/", "gateway.api"),
    ("gateway/resilience/", "gateway.resilience"),
    ("gateway/providers/", "gateway.providers"),
    ("gateway/streaming/", "gateway.streaming"),
    ("gateway/access/", "gateway.access"),
    ("gateway/observe/", "gateway.observe"),
    ("gateway/", "gateway (other)"),
    ("/httpx/", "httpx"),
    ("/httpcore/", "httpcore"),
    ("/h11/", "h11"),
    ("/aiohttp/", "aiohttp"),
    ("/httpx_aiohttp/", "httpx (aiohttp transport)"),
    ("/yarl/", "aiohttp"),
    ("/multidict/", "aiohttp"),
    ("/opentelemetry/", "fastapi"),
    ("/http/cookiejar.py", "httpx"),
    ("/anyio/", "anyio"),
    ("/starlette/", "starlette"),
    ("/fastapi/", "fastapi"),
    ("/uvicorn/", "uvicorn"),
    ("/asyncio/", "asyncio"),
    ("/logging/", "logging"),
)


def layer_of(path: str) -> str:
    for marker, name in LAYERS:
        if marker in path:
            return name
    return "other"


Counter = collections.Counter


def parse(raw: Path) -> tuple[int, Counter[str], Counter[str], Counter[str], Counter[str]]:
    """Total samples; self samples per function; inclusive per function; inclusive and self per layer."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    own_layers: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        names, seen_layers, layer = [], set(), "other"
        for frame in stack.split(";"):
            found = FRAME.match(frame)
            function, path = (found["function"], found["file"]) if found else (frame, "")
            short = path.split("site-packages/")[-1].split(str(REPO) + "/")[-1]
            names.append(f"{function} ({short})")
            layer = layer_of(path)
            seen_layers.add(layer)
        own[names[-1]] += count
        own_layers[layer] += count
        for name in set(names):
            inclusive[name] += count
        for seen in seen_layers:
            layers[seen] += count
    return total, own, inclusive, layers, own_layers


def load_command(mode: str, url: str, seconds: float, concurrency: int, workdir: Path) -> list[str]:
    """The load of one mode; `stream200` is the benchmark's 200 streams at 20 ms per token."""
    if mode == "http" and wrk.available():
        script = wrk.write_script(workdir / "post.lua", chat_body(MODEL, stream=False), [])
        return pinned(["wrk", "-t1", f"-c{concurrency}", f"-d{int(seconds)}s", "-s", str(script), url], "0")
    command = [
        sys.executable,
        "-m",
        "bench.load_client",
        "http" if mode == "http" else "stream",
        "--url",
        url,
        "-c",
        str(concurrency),
        "-d",
        str(seconds),
        "--tokens",
        "20",
    ]
    if mode == "stream200":
        command[command.index("-c") + 1] = "200"
        command[command.index("--tokens") + 1] = "50"
        command += ["--delay-ms", "20", "--ramp-ms", "1000"]
    return pinned(command, "0")


def main() -> int:
    parser = argparse.ArgumentParser(description="py-spy profile of the gateway under load")
    parser.add_argument("mode", choices=["http", "stream", "stream200"])
    parser.add_argument("--streamer", choices=["asgi", "starlette"], default="asgi")
    parser.add_argument("--variant", default="", help="a gateway_variant.py variant, e.g. aiohttp+warning")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    prepare_process()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-profile-"))
    mock_port = free_port()
    mock = mock_service(workdir, mock_port, "0").start()
    name = f"gateway-{args.streamer}" + (f"@{args.variant}" if args.variant else "")
    target = build_target(name, workdir, mock_port, "1")
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    variant = f"-{args.variant}" if args.variant else ""
    raw = REPO / "bench" / "results" / f"profile-{args.mode}-{args.streamer}{variant}-{stamp}.txt"
    raw.parent.mkdir(exist_ok=True)
    try:
        wait_for_port(mock, mock_port, 30)
        start(target)
        assert target.pid is not None
        load = subprocess.Popen(
            load_command(args.mode, target.url, args.seconds + 2, args.concurrency, workdir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        time.sleep(1.0)  # past warm-up
        subprocess.run(
            pinned(
                [
                    pyspy,
                    "record",
                    "--pid",
                    str(target.pid),
                    "--rate",
                    str(args.rate),
                    "--duration",
                    str(int(args.seconds)),
                    "--format",
                    "raw",
                    "--function",
                    "--full-filenames",
                    "--gil",
                    "--output",
                    str(raw),
                ],
                "0",
            ),
            check=True,
            capture_output=True,
        )
        output = load.communicate(timeout=args.seconds + 120)[0].decode()
    finally:
        if target.service is not None:
            target.service.stop()
        mock.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(output.strip()[-1500:])
    total, own, inclusive, layers, own_layers = parse(raw)
    print(f"\n{total} samples of running Python in the gateway ({raw.relative_to(REPO)})\n")
    print("Self share by layer (the layer of the innermost Python frame; C work is charged to its caller):")
    for name, count in own_layers.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")
    print("Inclusive share by layer (a sample counts once for every layer on its stack):")
    for name, count in layers.most_common():
        print(f"  {100 * count / total:5.1f}%  {name}")
    print(f"\nTop {args.top} functions by self samples:")
    for name, count in own.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {name}")
    print(f"\nTop {args.top} functions by inclusive samples:")
    for name, count in inclusive.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
