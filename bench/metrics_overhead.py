"""What metrics and the access log cost: the same load through the gateway with them off and on.

    .venv/bin/python bench/metrics_overhead.py                       # 3 rounds, 5 s per measurement
    .venv/bin/python bench/metrics_overhead.py --rounds 5 --seconds 10 --json out.json

Variants (one `gateway serve` process each, one worker):
- `off`: `GATEWAY_METRICS=0`, `LOG_LEVEL=WARNING` (no metrics observer, no access line);
- `metrics`: `GATEWAY_METRICS=1`, `LOG_LEVEL=WARNING`;
- `metrics+access`: `GATEWAY_METRICS=1`, `LOG_LEVEL=INFO` (the access line and the stream summary for
  every request, written to a file).

Scenarios: non-streaming at concurrency 50, and streams of 20 tokens (no delay) at concurrency 50, both
from wrk (one thread) against the fast mock upstream of `bench/mock_upstream.py`. Pinning as in
`bench/README.md`: wrk and the mock on core 0, the gateway alone on core 1. Within a round the variants
run back to back in a rotating order, so drift of the machine (other test suites share it) spreads over
all of them. Around each measurement the busy time of core 1 is read from /proc/stat and the gateway's
own CPU time subtracted: the rest is other processes ("noise"). Of the rounds, the least disturbed one
of each variant and scenario is reported, as requests/s and as the gateway's CPU time per request.

The load figures of two runs of the same variant differ by up to ~15% on this shared machine, far more
than the observers cost; so the script also times the observers alone, in this process (`micro`): the
microseconds one finished request (or stream) costs each observer, and that as a share of the gateway's
measured CPU time per request with everything off. That share is the overhead; the load rows show that
nothing else (an unexpected slow path) moves with the switch.
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


def measure(
    variant: str, config: Path, workdir: Path, scripts: dict[str, Path], seconds: float
) -> dict[str, dict[str, float]]:
    """One gateway process of `variant`; each scenario warmed up, then measured."""
    port = free_port()
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
    command += ["--host", "127.0.0.1", "--no-reload"]
    env = {**os.environ, **VARIANTS[variant]}
    log = (workdir / f"gateway-{variant}.log").open("ab")
    process = subprocess.Popen(pinned(command, "1"), cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port, process)
        results: dict[str, dict[str, float]] = {}
        for scenario, script in scripts.items():
            run_wrk(port, script, 1)  # warm up: connection pools, caches, label children
            before, core_before = cpu_seconds(process.pid), core_busy_seconds(1)
            raw = run_wrk(port, script, seconds)
            spent = cpu_seconds(process.pid) - before
            if not raw["requests"]:
                tail = (workdir / f"gateway-{variant}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{variant}/{scenario}: no request completed; gateway log:\n{tail}")
            others = core_busy_seconds(1) - core_before - spent
            elapsed = raw["duration_us"] / 1e6
            results[scenario] = {
                "noise_pct": max(0.0, others / elapsed * 100),
                "per_second": raw["requests"] / elapsed,
                "cpu_us_per_request": spent / raw["requests"] * 1e6,
                "p50_ms": raw["p50"] / 1000,
                "p99_ms": raw["p99"] / 1000,
            }
        return results
    finally:
        stop(process)
        log.close()


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


def summarize(rounds: list[dict[str, dict[str, dict[str, float]]]]) -> dict[str, Any]:
    """The least disturbed round of each variant and scenario, and its cost relative to `off`."""
    summary: dict[str, Any] = {}
    for scenario in SCENARIOS:
        rows: dict[str, dict[str, float]] = {}
        for variant in VARIANTS:
            figures = [one[variant][scenario] for one in rounds]
            rows[variant] = dict(min(figures, key=lambda figure: figure["noise_pct"]))
            rows[variant]["median_cpu_us_per_request"] = statistics.median(
                figure["cpu_us_per_request"] for figure in figures
            )
        base = rows["off"]
        for row in rows.values():
            row["throughput_change_pct"] = (row["per_second"] / base["per_second"] - 1) * 100
            row["cpu_change_pct"] = (row["cpu_us_per_request"] / base["cpu_us_per_request"] - 1) * 100
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
        f"metrics overhead: {args.rounds} rounds x {args.seconds:g} s, wrk -t1 -c{CONNECTIONS}, "
        "gateway on core 1, wrk + mock on core 0; the least disturbed round of each row",
        "",
        "| scenario | variant | req/s | vs off | gateway CPU us/req | vs off | median CPU us/req | p50 ms | "
        "p99 ms | noise on core 1 |",
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
                f"{row['median_cpu_us_per_request']:.0f}",
                f"{row['p50_ms']:.2f}",
                f"{row['p99_ms']:.2f}",
                f"{row['noise_pct']:.0f}%",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
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
            rounds: list[dict[str, dict[str, dict[str, float]]]] = []
            names = list(VARIANTS)
            for number in range(args.rounds):
                order = names[number % len(names) :] + names[: number % len(names)]
                results = {
                    variant: measure(variant, config, workdir, scripts, args.seconds) for variant in order
                }
                rounds.append(results)
                print(
                    f"round {number + 1}: "
                    + ", ".join(
                        f"{variant} {results[variant]['http_c50']['per_second']:,.0f}/s "
                        f"(noise {results[variant]['http_c50']['noise_pct']:.0f}%)"
                        for variant in order
                    ),
                    file=sys.stderr,
                )
        finally:
            stop(mock)
    summary = summarize(rounds)
    costs = micro_costs()
    print(render(summary, args) + "\n" + render_micro(costs, summary))
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "summary": summary, "micro": costs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
