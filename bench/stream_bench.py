"""Streaming benchmark of the gateway's two streamers: per-chunk added delay, TTFB, throughput, idle RSS.

    .venv/bin/python bench/stream_bench.py            # full run (~4 min), writes its part of bench/README.md
    .venv/bin/python bench/stream_bench.py --quick    # shorter measurements
    .venv/bin/python bench/stream_bench.py --no-readme --json out.json

The upstream is the fast mock (`bench/mock_upstream.py`): every token event carries the
`time.monotonic_ns()` at which the mock wrote it. The client (in this process, asyncio on uvloop with
httptools) stamps each socket read on arrival and subtracts: that is the delay of each chunk from the
mock's write to the client's read. The same load is run against the mock directly; the gateway's
**added** delay is the gateway figure minus the direct one. Each gateway runs as `python -m gateway serve`
(one process, defaults but a 2,000-connection pool and no health checks) pinned to core 1; the mock and
this client share core 0 (`taskset`), so they never take the gateway's core. Other processes still may:
the gateway's scheduler figures (/proc/PID/schedstat) are reported next to the delays.

Scenarios, for each target (direct, gateway-asgi, gateway-starlette):
- latency at 1, 50 and 500 concurrent streams: 50 tokens 20 ms apart (an LLM's pace), starts spread over
  one token interval; per-chunk delay percentiles and time to first token;
- throughput at 1, 50 and 500 concurrent streams: 20 tokens without pause, back to back; events/s, MB/s;
- idle: 1,000 streams open at once, each waiting for its second token; VmRSS of the gateway process
  (/proc/PID/status) before and with them open.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.processes import Service, free_port, pinned, wait_for_port  # noqa: E402
from bench.stream_bench_client import MODEL, idle_streams, load  # noqa: E402

README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- stream-bench:begin -->", "<!-- stream-bench:end -->"
TARGETS = ("direct", "gateway-asgi", "gateway-starlette")
CONCURRENCY = (1, 50, 500)


# The processes.


def scheduler_seconds(pid: int) -> tuple[float, float]:
    """Seconds the process's main thread ran, and waited runnable for a CPU (/proc/PID/schedstat)."""
    on_cpu, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def gateway_config(mock_port: int, streamer: str) -> str:
    return textwrap.dedent(
        f"""\
        providers:
          mock-upstream:
            type: openai
            base_url: http://127.0.0.1:{mock_port}/v1
            health_check: {{enabled: false}}
            pool: {{max_connections: 2000}}  # 1,000 open streams need 1,000 upstream connections
        routes:
          {MODEL}:
            streaming: {streamer}
            targets: [{{provider: mock-upstream}}]
        """
    )


def start_gateway(workdir: Path, mock_port: int, streamer: str) -> tuple[Service, int]:
    config = workdir / f"routes-{streamer}"
    config.mkdir(exist_ok=True)
    (config / "routes.yaml").write_text(gateway_config(mock_port, streamer))
    port = free_port()
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)]
    command += ["--host", "127.0.0.1", "--no-reload", "--log-level", "WARNING"]
    service = Service(
        f"gateway-{streamer}", pinned(command, "1"), workdir / f"gateway-{streamer}.log", cwd=ROOT
    )
    service.start()
    wait_for_port(service, port, 60)
    return service, port


async def measure_target(name: str, port: int, pid: int | None, args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"latency": {}, "throughput": {}}
    path = "/v1/chat/completions"
    probe = (lambda: scheduler_seconds(pid)) if pid is not None else None
    for concurrency in args.concurrency:
        result["latency"][concurrency] = await load(
            port, path, concurrency=concurrency, seconds=args.seconds, tokens=50, delay_ms=20, probe=probe
        )
        result["throughput"][concurrency] = await load(
            port, path, concurrency=concurrency, seconds=args.seconds, tokens=20, delay_ms=0, probe=probe
        )
        print(
            f"  {name} c={concurrency}: {json.dumps(result['latency'][concurrency]['delay_ms'])}", flush=True
        )
    if pid is not None and args.idle:
        result["idle"] = await idle_streams(port, path, args.idle, lambda: vm_rss_mb(pid))
        print(f"  {name} idle: {result['idle']}", flush=True)
    return result


# The report.


def render(run: dict[str, Any]) -> str:
    results = run["results"]
    direct = results.get("direct")
    lines = [
        f"Run {run['date']} on {run['machine']}; load average before the run {run['loadavg']}; "
        f"{run['seconds']:g} s per measurement. Mock and client pinned to core 0, the gateway to core 1. "
        "Delays are from the mock's write of a token event to the client's read of it; **added** is the "
        "gateway's figure minus the direct one (same load, same run). *Gateway CPU*: its main thread's CPU "
        "time (% of one core, and per token event); *CPU waited*: time it was runnable but other processes "
        "held its core (/proc/PID/schedstat), i.e. how much of the delay is the machine's noise.",
        "",
        "Per-chunk delay and time to first token: 50 tokens 20 ms apart per stream (ms)",
        "",
        "| streams | target | delay p50 | p90 | p99 | max | added p50 | added p99 | TTFB p50 | TTFB p99 "
        "| added TTFB p50 | events/s | gateway CPU | CPU waited |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for concurrency in run["concurrency"]:
        for name, result in results.items():
            figures = result["latency"][str(concurrency)]
            base = direct["latency"][str(concurrency)] if direct else None
            delay, ttfb = figures["delay_ms"], figures["ttfb_ms"]
            lines.append(
                f"| {concurrency} | {name} | {delay['p50']} | {delay['p90']} | {delay['p99']} "
                f"| {delay['max']} "
                f"| {added(figures, base, 'delay_ms', 'p50')} | {added(figures, base, 'delay_ms', 'p99')} "
                f"| {ttfb['p50']} | {ttfb['p99']} | {added(figures, base, 'ttfb_ms', 'p50')} "
                f"| {figures['events_per_s']:,.0f} | {cpu(figures)} |"
            )
    lines += [
        "",
        "Throughput: 20 tokens per stream without pause, streams back to back on each connection",
        "",
        "| streams | target | streams/s | events/s | MB/s | delay p50 (ms) | delay p99 (ms) | failed "
        "| gateway CPU | CPU waited |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for concurrency in run["concurrency"]:
        for name, result in results.items():
            figures = result["throughput"][str(concurrency)]
            lines.append(
                f"| {concurrency} | {name} | {figures['streams_per_s']:,.1f} "
                f"| {figures['events_per_s']:,.0f} "
                f"| {figures['mb_per_s']} | {figures['delay_ms']['p50']} | {figures['delay_ms']['p99']} "
                f"| {figures['failed']} | {cpu(figures)} |"
            )
    idle = {name: result["idle"] for name, result in results.items() if "idle" in result}
    if idle:
        lines += [
            "",
            "Idle streams: all open at once, each has its first token and waits for the next (VmRSS of the "
            "gateway process)",
            "",
            "| streamer | open streams | RSS before | RSS with them open | per stream | RSS after closing |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, figures in idle.items():
            lines.append(
                f"| {name} | {figures['streams']:,} | {figures['rss_before_mb']} MB "
                f"| {figures['rss_open_mb']} MB "
                f"| {figures['kb_per_stream']} KB | {figures['rss_after_mb']} MB |"
            )
    lines += ["", "Targets of the streaming issue:", ""]
    for name, result in results.items():
        if name == "direct":
            continue
        at50 = result["latency"].get("50")
        if at50 is not None and direct is not None:
            value = added(at50, direct["latency"]["50"], "delay_ms", "p99")
            verdict = "met" if isinstance(value, float) and value <= 1.0 else "NOT met"
            lines.append(
                f"- {name}: per-chunk added delay p99 at 50 streams = {value} ms (target <= 1 ms): {verdict}"
            )
        if name in idle:
            open_mb = idle[name]["rss_open_mb"]
            verdict = "met" if open_mb < 200 else "NOT met"
            lines.append(
                f"- {name}: {idle[name]['streams']:,} idle streams, RSS {open_mb} MB "
                f"(target < 200 MB): {verdict}"
            )
    return "\n".join(lines)


def cpu(figures: dict[str, Any]) -> str:
    """Two cells: the gateway's CPU (% of a core, us per event) and how long it waited for its core."""
    if "proxy_cpu_pct" not in figures:
        return "- | -"
    return (
        f"{figures['proxy_cpu_pct']}% ({figures['proxy_cpu_us_per_event']} us/event) "
        f"| {figures['proxy_wait_pct']}%"
    )


def added(figures: dict[str, Any], base: dict[str, Any] | None, key: str, pct: str) -> float | str:
    if base is None or figures[key][pct] is None or base[key][pct] is None:
        return "-"
    return round(figures[key][pct] - base[key][pct], 3)


def write_readme(body: str) -> None:
    """Replace this script's section of bench/README.md (between its markers), adding it the first time."""
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    section = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Streaming engine (`bench/stream_bench.py`)\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


# The run.


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 s per measurement instead of 8")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per measurement")
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)), help="e.g. 1,50,500")
    parser.add_argument("--idle", type=int, default=1000, help="idle streams to open (0: skip)")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"subset of {','.join(TARGETS)}")
    parser.add_argument("--no-readme", action="store_true", help="do not write bench/README.md")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    parser.add_argument("--render", type=Path, default=None, help="no run: write the README from this JSON")
    return parser


async def run_all(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    mock_port = free_port()
    mock = Service(
        "mock",
        pinned([sys.executable, "-m", "bench.mock_upstream", "--port", str(mock_port)], "0"),
        workdir / "mock.log",
        cwd=ROOT,
    )
    results: dict[str, Any] = {}
    mock.start()
    try:
        wait_for_port(mock, mock_port, 30)
        for name in args.targets:
            print(f"{name}:", flush=True)
            if name == "direct":
                results[name] = await measure_target(name, mock_port, None, args)
                continue
            gateway, port = start_gateway(workdir, mock_port, name.removeprefix("gateway-"))
            try:
                results[name] = await measure_target(name, port, gateway.pid, args)
            finally:
                gateway.stop()
                if gateway.process is not None and gateway.process.returncode not in (0, -15):
                    print(gateway.log_tail(), file=sys.stderr)
    finally:
        mock.stop()
    return json.loads(json.dumps(results))  # concurrency keys as strings, as in the saved JSON


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.render is not None:
        write_readme(render(json.loads(args.render.read_text())))
        return 0
    args.seconds = args.seconds or (3.0 if args.quick else 8.0)
    args.concurrency = [int(value) for value in args.concurrency.split(",")]
    args.targets = [name for name in args.targets.split(",") if name]
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        raise SystemExit(f"unknown targets: {', '.join(sorted(unknown))}")
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})  # the client shares core 0 with the mock; core 1 is the gateway's
    run: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine(),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "seconds": args.seconds,
        "concurrency": args.concurrency,
    }
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as workdir:
        run["results"] = uvloop.run(run_all(args, Path(workdir)))
    body = render(run)
    print(body)
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"stream-bench-{int(time.time())}.json").write_text(json.dumps(run, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(run, indent=1))
    if not args.no_readme:
        write_readme(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
