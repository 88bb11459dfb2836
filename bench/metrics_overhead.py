"""What metrics and the access log cost: the same load through the gateway with them off and on.

    .venv/bin/python bench/metrics_overhead.py                        # 10 rounds, 2 s per measurement
    .venv/bin/python bench/metrics_overhead.py --rounds 20 --seconds 3 --json out.json

Variants (one `gateway serve` process each, one worker, all started at once and idle but for the one
being measured):
- `off`: `GATEWAY_METRICS=0`, `LOG_LEVEL=WARNING` (no metrics observer, no access line);
- `metrics`: `GATEWAY_METRICS=1`, `LOG_LEVEL=WARNING`;
- `metrics+access`: `GATEWAY_METRICS=1`, `LOG_LEVEL=INFO` (the access line and the stream summary for
  every request, written to a file).

Scenarios: non-streaming at concurrency 50, and streams of 20 tokens (no delay) at concurrency 50, both
from wrk (one thread) against the fast mock upstream of `bench/mock_upstream.py`. Pinning as in
`bench/README.md`: wrk and the mock on core 0, the gateways on core 1. This shared 2-core VM drifts by
tens of percent within a minute, far more than the observers cost, so the runs are short and paired:
each round measures every variant back to back (rotating the order), and the cost is the median over
rounds of each round's ratio to `off` (throughput, and the gateway's CPU time per request from /proc).
Around each run the busy time of core 1 is read from /proc/stat and the gateway's own CPU subtracted:
the rest is other processes ("noise").

The script also times the observers alone, in this process and in CPU time (`micro`): the microseconds
one finished request (or stream) costs each observer, and that as a share of the gateway's CPU time
per request with everything off. That is the overhead with the noise taken out; the load rows show
that nothing else (an unexpected slow path) moves with the switch.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {
    "off": {"GATEWAY_METRICS": "0", "LOG_LEVEL": "WARNING"},
    "metrics": {"GATEWAY_METRICS": "1", "LOG_LEVEL": "WARNING"},
    "metrics+access": {"GATEWAY_METRICS": "1", "LOG_LEVEL": "INFO"},
}
SCENARIOS = {
    "http_c50": {"stream": False},
    "stream20_c50": {"stream": True},
}
CONNECTIONS = 50
WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {{"requests":%d,"duration_us":%d,"status_errors":%d,"p50":%.1f,"p99":%.1f}}\\n',
    summary.requests, summary.duration, summary.errors.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(command: list[str], core: str) -> list[str]:
    return ["taskset", "-c", core, *command] if shutil.which("taskset") and os.cpu_count() != 1 else command


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (its own threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def core_busy_seconds(core: int) -> float:
    """Busy (not idle, not iowait) time of one core so far."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(field) for field in line.split()[1:]]
            return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return 0.0


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_script(workdir: Path, name: str, stream: bool) -> Path:
    body: dict[str, Any] = {
        "model": "bench",
        "messages": [{"role": "user", "content": "bench:tokens=20,delay_ms=0"}],
    }
    if stream:
        body["stream"] = True
    path = workdir / f"{name}.lua"
    path.write_text(WRK_SCRIPT.format(body=lua_string(json.dumps(body))))
    return path


def run_wrk(port: int, script: Path, seconds: float) -> dict[str, Any]:
    command = pinned(
        [
            "wrk",
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "--timeout=10s",
            "-s",
            str(script),
        ],
        "0",
    )
    command.append(f"http://127.0.0.1:{port}/v1/chat/completions")
    completed = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"^WRK_JSON (\{.*\})$", completed.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    raw = json.loads(found.group(1))
    if raw["status_errors"]:
        raise RuntimeError(f"{raw['status_errors']} non-2xx answers: the gateway is misconfigured")
    return raw


def gateway_config(workdir: Path, mock_port: int) -> Path:
    config = workdir / "routes"
    config.mkdir(exist_ok=True)
    (config / "routes.yaml").write_text(
        textwrap.dedent(
            f"""\
            providers:
              mock-upstream:
                type: openai
                base_url: http://127.0.0.1:{mock_port}/v1
                health_check: {{enabled: false}}
            routes:
              bench:
                targets: [{{provider: mock-upstream}}]
            """
        )
    )
    return config


class Gateway:
    """One `gateway serve` process of a variant, pinned to core 1; idle while another one is measured."""

    def __init__(self, variant: str, config: Path, workdir: Path) -> None:
        self.variant = variant
        self.port = free_port()
        self.log_path = workdir / f"gateway-{variant}.log"
        command = [sys.executable, "-m", "gateway", "serve", "--config", str(config)]
        command += ["--port", str(self.port), "--host", "127.0.0.1", "--no-reload"]
        env = {**os.environ, **VARIANTS[variant]}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(pinned(command, "1"), cwd=ROOT, env=env, stdout=log, stderr=log)
        wait_for_port(self.port, self.process)

    def measure(self, script: Path, seconds: float) -> dict[str, float]:
        """One wrk run: throughput, the gateway's CPU per request, and other processes' share of core 1."""
        before, core_before = cpu_seconds(self.process.pid), core_busy_seconds(1)
        raw = run_wrk(self.port, script, seconds)
        spent = cpu_seconds(self.process.pid) - before
        if not raw["requests"]:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.variant}: no request completed; gateway log:\n{tail}")
        others = core_busy_seconds(1) - core_before - spent
        elapsed = raw["duration_us"] / 1e6
        return {
            "per_second": raw["requests"] / elapsed,
            "cpu_us_per_request": spent / raw["requests"] * 1e6,
            "p50_ms": raw["p50"] / 1000,
            "p99_ms": raw["p99"] / 1000,
            "noise_pct": max(0.0, others / elapsed * 100),
        }

    def stop(self) -> None:
        stop(self.process)


def measure_rounds(
    gateways: dict[str, Gateway], scripts: dict[str, Path], rounds: int, seconds: float
) -> dict[str, list[dict[str, dict[str, float]]]]:
    """Per scenario, `rounds` rounds; in each, every variant once, back to back, in a rotating order."""
    results: dict[str, list[dict[str, dict[str, float]]]] = {}
    names = list(gateways)
    for scenario, script in scripts.items():
        for gateway in gateways.values():
            gateway.measure(script, 1)  # warm up: connection pools, caches, label children
        results[scenario] = []
        for number in range(rounds):
            order = names[number % len(names) :] + names[: number % len(names)]
            one = {variant: gateways[variant].measure(script, seconds) for variant in order}
            results[scenario].append(one)
            figures = ", ".join(f"{variant} {one[variant]['per_second']:,.0f}/s" for variant in order)
            print(f"{scenario} round {number + 1}: {figures}", file=sys.stderr)
    return results


def micro_costs(iterations: int = 50_000) -> dict[str, float]:
    """Microseconds per call of each observer for a typical finished request and stream, in this process
    (the gateway's own classes; one process, so the in-memory value class of prometheus-client)."""
    sys.path.insert(0, str(ROOT))
    from gateway.observe.access_log import AccessLog
    from gateway.observe.logging import configure_logging
    from gateway.observe.metrics import GatewayMetrics
    from gateway.records import RequestRecord

    usage = {"prompt_tokens": 12, "completion_tokens": 9}
    plain = RequestRecord(
        "req_1", "bench", "bench", "mock-upstream", "bench", False, 200, 1, 0.0012, usage=usage
    )
    streamed = RequestRecord(
        "req_2", "bench", "bench", "mock-upstream", "bench", True, 200, 1, 0.004, usage=usage,
        time_to_first_chunk=0.001, chunks=22, stream_status="ok", chunk_interval=1e-4,
        max_chunk_interval=3e-4,
    )  # fmt: skip
    metrics = GatewayMetrics(multiprocess_dir="")
    access = AccessLog()
    loop = asyncio.new_event_loop()

    def timed(call: Any, repeats: int = 7) -> float:
        """CPU time of this thread (not wall time: another process taking the core between two calls
        does not count), best of `repeats` runs, us per call."""
        for _ in range(1000):
            call()
        best = float("inf")
        for _ in range(repeats):
            started = time.thread_time()
            for _ in range(iterations // repeats):
                call()
            best = min(best, (time.thread_time() - started) / (iterations // repeats))
        return best * 1e6

    async def nothing() -> None:
        return None

    def finish(observer: Any, record: Any) -> Any:
        return lambda: loop.run_until_complete(observer.request_finished(record))

    def stream() -> None:
        metrics.stream_opened()
        loop.run_until_complete(metrics.request_finished(streamed))

    gateway_logger = logging.getLogger("gateway")
    saved = gateway_logger.handlers[:], gateway_logger.level, gateway_logger.propagate
    try:
        baseline = timed(lambda: loop.run_until_complete(nothing()))  # driving a coroutine, alone
        costs = {
            "metrics per request": timed(finish(metrics, plain)) - baseline,
            "metrics per stream": timed(stream) - baseline,
        }
        for output in ("text", "json"):
            configure_logging("INFO", output, stream=io.StringIO())
            costs[f"access line ({output})"] = timed(finish(access, plain)) - baseline
        configure_logging("WARNING", "text", stream=io.StringIO())
        costs["access line (level off)"] = timed(finish(access, plain)) - baseline
    finally:
        gateway_logger.handlers[:], gateway_logger.level, gateway_logger.propagate = saved
        loop.close()
    return costs


def summarize(results: dict[str, list[dict[str, dict[str, float]]]]) -> dict[str, Any]:
    """Per variant: medians of its figures, and the median over rounds of its ratio to `off` in the same
    round (adjacent runs share the machine's state, so the ratio cancels most of the drift)."""
    summary: dict[str, Any] = {}
    for scenario, rounds in results.items():
        rows: dict[str, dict[str, float]] = {}
        for variant in VARIANTS:
            row = {key: statistics.median(one[variant][key] for one in rounds) for key in rounds[0][variant]}
            throughput = [one[variant]["per_second"] / one["off"]["per_second"] for one in rounds]
            cpu = [one[variant]["cpu_us_per_request"] / one["off"]["cpu_us_per_request"] for one in rounds]
            row["throughput_change_pct"] = (statistics.median(throughput) - 1) * 100
            row["cpu_change_pct"] = (statistics.median(cpu) - 1) * 100
            row["cpu_change_spread_pct"] = (max(cpu) - min(cpu)) * 100
            rows[variant] = row
        summary[scenario] = rows
    return summary


def render_micro(costs: dict[str, float], summary: dict[str, Any]) -> str:
    http = summary["http_c50"]["off"]["cpu_us_per_request"]
    stream = summary["stream20_c50"]["off"]["cpu_us_per_request"]
    lines = [
        "",
        f"observers alone (this process), against the gateway's CPU per request with everything off "
        f"({http:.0f} us non-streaming, {stream:.0f} us per 20-token stream):",
        "",
        "| observer | us per call | share of a request | share of a stream |",
        "|---|---|---|---|",
    ]
    for name, cost in costs.items():
        of_stream = cost / stream * 100
        of_request = "—" if "stream" in name else f"{cost / http * 100:.2f}%"
        lines.append(f"| {name} | {cost:.1f} | {of_request} | {of_stream:.2f}% |")
    return "\n".join(lines)


def render(summary: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"metrics overhead: {args.rounds} rounds x {args.seconds:g} s per variant and scenario, "
        f"wrk -t1 -c{CONNECTIONS}, the gateway on core 1, wrk and the mock on core 0; medians, and the "
        "median of each round's ratio to `off`",
        "",
        "| scenario | variant | req/s | vs off | gateway CPU us/req | vs off | spread of that ratio | "
        "p50 ms | p99 ms | noise on core 1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario, rows in summary.items():
        for variant, row in rows.items():
            cells = [
                scenario,
                variant,
                f"{row['per_second']:,.0f}",
                f"{row['throughput_change_pct']:+.1f}%",
                f"{row['cpu_us_per_request']:.0f}",
                f"{row['cpu_change_pct']:+.1f}%",
                f"{row['cpu_change_spread_pct']:.0f} pts",
                f"{row['p50_ms']:.2f}",
                f"{row['p99_ms']:.2f}",
                f"{row['noise_pct']:.0f}%",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json", type=Path, help="also write the raw rounds and the summary here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is needed (apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="metrics-overhead-") as directory:
        workdir = Path(directory)
        mock_port = free_port()
        mock_command = [sys.executable, "-m", "bench.mock_upstream", "--port", str(mock_port)]
        mock = subprocess.Popen(pinned(mock_command, "0"), cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            wait_for_port(mock_port, mock)
            config = gateway_config(workdir, mock_port)
            scripts = {name: write_script(workdir, name, **options) for name, options in SCENARIOS.items()}
            gateways: dict[str, Gateway] = {}
            try:
                for variant in VARIANTS:
                    gateways[variant] = Gateway(variant, config, workdir)
                results = measure_rounds(gateways, scripts, args.rounds, args.seconds)
            finally:
                for gateway in gateways.values():
                    gateway.stop()
        finally:
            stop(mock)
    summary = summarize(results)
    costs = micro_costs()
    print(render(summary, args) + "\n" + render_micro(costs, summary))
    if args.json:
        args.json.write_text(json.dumps({"rounds": results, "summary": summary, "micro": costs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
