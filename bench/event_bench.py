"""Proxy CPU per streamed event, pass-through against translated, for chat, Messages and Responses clients.

    .venv/bin/python bench/event_bench.py messages           # 4 paths x 3 repeats (~1.5 min)
    .venv/bin/python bench/event_bench.py responses          # 3 paths x 3 repeats (~1 min)
    .venv/bin/python bench/event_bench.py responses --repeat 5 --json out.json
    .venv/bin/python bench/event_bench.py messages --smoke   # seconds: tiny loads, same checks

Each bench is a table of paths through one gateway process, in front of the same mock upstream: see
bench/event_paths.py. Each load is `concurrency` streams at once, each of N token events D ms apart
(so every event is its own upstream write and the gateway's core stays far from full), `rounds` streams
per connection, starts spread over one stream's length. The gateway's CPU time (utime + stime of its
process tree, /proc/PID/stat) is read before and after; per stream = CPU / streams, per event = per
stream / N (per SSE event: over every event the client got, framing included). Every stream is checked
(bench/event_stream_client.py: status, N token events, its terminal event, no error event, and for
Responses every event parsed); a load with a failed stream is reported as failed, not as a figure.

The same number of streams with N short (`--short-tokens`), started at the same rate (fewer at once, so
the same wall time and the gateway's core as far from full), gives the fixed cost of a stream (request,
routing, request translation, response head, closing events), and so the **marginal** cost of one event:
(per stream at N - per stream at N short) / (N - N short): the relay's and the stream translator's share
alone. Paths alternate within each repeat (so a disturbance hits all alike); the median of the repeats is
kept. The mock and this client run on core 0, the gateway alone on core 1 (`taskset`), as in bench/run.py.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.event_paths import BENCHES, TARGET_RATIO, Bench, StreamPath, gateway_conf
from bench.event_stream_client import StreamTally, run_streams
from bench.processes import Service, core_busy_seconds, cpu_seconds, free_port, pinned, wait_for_port
from bench.run import machine, prepare_process
from bench.targets import REPO, mock_service


@dataclass(frozen=True, slots=True)
class Load:
    concurrency: int
    rounds: int  # streams per connection
    tokens: int
    delay_ms: float

    @property
    def streams(self) -> int:
        return self.concurrency * self.rounds


def short_load(long: Load, tokens: int) -> Load:
    """As many streams as `long`, started at the same rate (fewer at once, more rounds): the same wall
    time, and the gateway's core as far from full, so the difference to `long` is the events alone."""
    concurrency = max(1, round(long.concurrency * tokens / long.tokens))
    return Load(concurrency, max(1, long.streams // concurrency), tokens, long.delay_ms)


def measure(path: StreamPath, load: Load, port: int, gateway_pid: int, mock_pid: int) -> dict[str, Any]:
    """One load through `path`: the gateway's CPU per stream and per event, and what the streams were."""
    before_cpu, before_mock, before_cores = (
        cpu_seconds(gateway_pid),
        cpu_seconds(mock_pid),
        core_busy_seconds(),
    )
    started = time.monotonic()
    tally: StreamTally = uvloop.run(
        run_streams(
            "127.0.0.1",
            port,
            path.client,
            path.key,
            concurrency=load.concurrency,
            streams_per_worker=load.rounds,
            tokens=load.tokens,
            delay_ms=load.delay_ms,
            spread_s=load.tokens * load.delay_ms / 1000.0,
        )
    )
    elapsed = time.monotonic() - started
    proxy = cpu_seconds(gateway_pid) - before_cpu
    mock = cpu_seconds(mock_pid) - before_mock
    core1 = core_busy_seconds().get("cpu1", 0.0) - before_cores.get("cpu1", 0.0)
    result: dict[str, Any] = {
        "streams": tally.streams,
        "failed": tally.failed,
        "failures": tally.failures,
        "statuses": {str(status): count for status, count in tally.statuses.items()},
        "tokens": tally.tokens,
        "events": tally.events,
        "events_per_stream": tally.events / tally.streams if tally.streams else 0.0,
        "elapsed_s": round(elapsed, 3),
        "proxy_cpu_s": round(proxy, 3),
        "proxy_pct": round(100 * proxy / elapsed, 1),
        "mock_pct": round(100 * mock / elapsed, 1),
        "noise_core1_pct": round(max(0.0, 100 * (core1 - proxy) / elapsed), 1),
    }
    if tally.streams:
        result["us_per_stream"] = 1e6 * proxy / tally.streams
        result["us_per_token_event"] = 1e6 * proxy / tally.tokens
        result["us_per_sse_event"] = 1e6 * proxy / tally.events
    if tally.delays_ns:
        ordered = sorted(tally.delays_ns)
        result["chunk_delay_ms"] = {
            "p50": ordered[len(ordered) // 2] / 1e6,
            "p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] / 1e6,
        }
    return result


def ok(result: dict[str, Any], load: Load) -> bool:
    return bool(result["failed"] == 0 and result["streams"] == load.streams)


def start_gateway(workdir: Path, mock_port: int) -> tuple[Service, int]:
    config_dir = workdir / "routes"
    config_dir.mkdir()
    (config_dir / "bench.yaml").write_text(gateway_conf(mock_port))
    port = free_port()
    # --no-reload: no config watcher ticking in the measured CPU; WARNING: no access line per request,
    # as bench/targets.py runs the gateway.
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(config_dir), "--port", str(port)]
    command.append("--no-reload")
    service = Service(
        "gateway", pinned(command, "1"), workdir / "gateway.log", env={"LOG_LEVEL": "WARNING"}, cwd=REPO
    )
    service.start()
    wait_for_port(service, port, 60)
    return service, port


def check_paths(paths: list[StreamPath], port: int, gateway: Service, mock_pid: int) -> None:
    """One small stream per path before measuring: a misrouted path fails here with its first problem."""
    probe = Load(concurrency=1, rounds=1, tokens=3, delay_ms=0.0)
    for path in paths:
        result = measure(path, probe, port, gateway.pid, mock_pid)
        if not ok(result, probe):
            raise RuntimeError(
                f"{path.key}: {result['failures'] or result['statuses']}\n{gateway.log_tail()}"
            )


def run(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    long = Load(args.concurrency, args.rounds, args.tokens, args.delay_ms)
    short = short_load(long, args.short_tokens)
    keys = args.paths.split(",") if args.paths else [path.key for path in bench.paths]
    chosen = [path for path in bench.paths if path.key in keys]
    workdir = Path(tempfile.mkdtemp(prefix="gateway-event-bench-"))
    mock_port = free_port()
    mock = mock_service(workdir, mock_port, "0").start()
    gateway: Service | None = None
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {p.key: {"long": [], "short": []} for p in chosen}
    try:
        wait_for_port(mock, mock_port, 30)
        gateway, port = start_gateway(workdir, mock_port)
        check_paths(chosen, port, gateway, mock.pid)
        warm = Load(args.concurrency, 1, min(args.tokens, 5), 0.0)  # pools open, code paths warm
        for path in chosen:
            measure(path, warm, port, gateway.pid, mock.pid)
        for repeat in range(args.repeat):
            for path in chosen:
                for name, load in (("long", long), ("short", short)):
                    result = measure(path, load, port, gateway.pid, mock.pid)
                    runs[path.key][name].append(result)
                    print(f"[{repeat + 1}/{args.repeat}] {path.key} {name}: {brief(result)}", file=sys.stderr)
    finally:
        if gateway is not None:
            gateway.stop()
        mock.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "bench/event_bench.py " + " ".join(args.argv),
        "machine": machine(),
        "commit": commit(),
        "load": {
            "concurrency": long.concurrency,
            "streams": long.streams,
            "tokens": long.tokens,
            "short_tokens": short.tokens,
            "delay_ms": long.delay_ms,
            "repeat": args.repeat,
        },
        "paths": {path.key: summarize(path, runs[path.key], long, short) for path in chosen},
    }


def summarize(
    path: StreamPath, runs: dict[str, list[dict[str, Any]]], long: Load, short: Load
) -> dict[str, Any]:
    failed = [r for name, load in (("long", long), ("short", short)) for r in runs[name] if not ok(r, load)]
    entry: dict[str, Any] = {"label": path.label, "runs": runs, "failed_loads": len(failed)}
    if failed:
        entry["failures"] = failed[0]["failures"] or failed[0]["statuses"]
        return entry
    per_stream = statistics.median(r["us_per_stream"] for r in runs["long"])
    per_short = statistics.median(r["us_per_stream"] for r in runs["short"])
    marginal = [
        (lr["us_per_stream"] - sr["us_per_stream"]) / (long.tokens - short.tokens)
        for lr, sr in zip(runs["long"], runs["short"], strict=True)
    ]
    events_per_stream = runs["long"][0]["events_per_stream"]
    entry.update(
        us_per_stream=per_stream,
        us_per_event=per_stream / long.tokens,
        us_per_sse_event=per_stream / events_per_stream,
        us_per_short_stream=per_short,
        us_marginal_per_event=statistics.median(marginal),
        events_per_stream=events_per_stream,
        spread_us_per_event=[
            round(min(r["us_per_token_event"] for r in runs["long"]), 2),
            round(max(r["us_per_token_event"] for r in runs["long"]), 2),
        ],
        proxy_pct=statistics.median(r["proxy_pct"] for r in runs["long"]),
        mock_pct=statistics.median(r["mock_pct"] for r in runs["long"]),
        noise_core1_pct=max(r["noise_core1_pct"] for r in runs["long"]),
        chunk_delay_p99_ms=statistics.median(r["chunk_delay_ms"]["p99"] for r in runs["long"]),
    )
    return entry


def brief(result: dict[str, Any]) -> str:
    if result["failed"]:
        return f"FAILED {result['failed']} streams: {result['failures']}"
    return (
        f"{result['streams']} streams, {result['us_per_stream']:.0f} us/stream, "
        f"{result['us_per_token_event']:.1f} us/event, proxy {result['proxy_pct']}%, "
        f"noise core1 {result['noise_core1_pct']}%"
    )


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip()


def render(results: dict[str, Any]) -> str:
    load, paths = results["load"], results["paths"]
    lines = [
        f"Run of {results['date']} (`{results['command'].strip()}`, commit {results['commit']}); "
        f"{results['machine']}.",
        f"Load per path and repeat: {load['streams']:,} streams, {load['concurrency']} at once, "
        f"{load['tokens']} token events {load['delay_ms']:g} ms apart (and the same with "
        f"{load['short_tokens']} for the fixed cost); median of {load['repeat']} repeats.",
        "",
        "| path | proxy CPU us/stream | us/event | marginal us/event | fixed us/stream | SSE events/stream "
        "| us/SSE event | us/event range | proxy core | failed loads |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in paths.values():
        if entry["failed_loads"]:
            failed = f"| {entry['label']} | FAILED: {entry['failures']} |"
            lines.append(failed + " |" * 7 + f" {entry['failed_loads']} |")
            continue
        low, high = entry["spread_us_per_event"]
        lines.append(
            f"| {entry['label']} | {entry['us_per_stream']:,.0f} | {entry['us_per_event']:.1f} | "
            f"{entry['us_marginal_per_event']:.1f} | {entry['us_per_short_stream']:,.0f} | "
            f"{entry['events_per_stream']:.0f} | {entry['us_per_sse_event']:.1f} | {low:.1f}-{high:.1f} | "
            f"{entry['proxy_pct']:.0f}% | 0 |"
        )
    if results.get("smoke"):
        lines += ["", "Smoke run: loads far below the CPU clock's 10 ms tick; no figure is a measurement."]
    lines += [
        "",
        f"| translated / pass-through | per event | marginal per event | at most {TARGET_RATIO:g}x |",
        "|---|---:|---:|---|",
    ]
    for entry in results["ratios"]:
        per_event, marginal = entry["per_event"], entry["marginal_per_event"]
        verdict = "—" if per_event is None else "yes" if per_event <= TARGET_RATIO else "NO"
        if not entry["translation"]:
            verdict = "(not a translation)"
        pair = f"{entry['translated']} / {entry['base']}"
        lines.append(f"| {pair} | {times(per_event)} | {times(marginal)} | {verdict} |")
    return "\n".join(lines)


def ratios(bench: Bench, paths: dict[str, Any]) -> list[dict[str, Any]]:
    """Each translated path's figures over its pass-through's (None where either is missing or zero)."""
    out = []
    for ratio in bench.ratios:
        one, other = paths.get(ratio.over), paths.get(ratio.base)
        if not one or not other or one["failed_loads"] or other["failed_loads"]:
            continue
        entry: dict[str, Any] = {
            "translated": ratio.over,
            "base": ratio.base,
            "translation": ratio.translation,
        }
        for key, field in (("per_event", "us_per_event"), ("marginal_per_event", "us_marginal_per_event")):
            entry[key] = one[field] / other[field] if other[field] > 0 else None
        out.append(entry)
    return out


def times(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio:.2f}x"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bench", choices=sorted(BENCHES), help="which table of paths (bench/event_paths.py)")
    parser.add_argument("--smoke", action="store_true", help="seconds: 10 streams of 8 events per load")
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=20, help="streams per connection per load")
    parser.add_argument("--tokens", type=int, default=40, help="token events per stream")
    parser.add_argument(
        "--short-tokens", type=int, default=4, help="token events per stream, fixed-cost load"
    )
    parser.add_argument("--delay-ms", type=float, default=5.0, help="ms between token events")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--paths", help="comma-separated keys of the bench's paths (default: all)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.smoke:
        args.concurrency, args.rounds, args.tokens, args.short_tokens = 5, 2, 8, 2
        args.delay_ms, args.repeat = 1.0, 1
    bench = BENCHES[args.bench]
    unknown = set(args.paths.split(",")) - {path.key for path in bench.paths} if args.paths else set()
    if unknown:
        build_parser().error(f"not a path of the {bench.name} bench: {', '.join(sorted(unknown))}")
    prepare_process()
    results = run(bench, args)
    results["ratios"] = ratios(bench, results["paths"])
    results["smoke"] = args.smoke
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(render(results))
    return 0 if all(not entry["failed_loads"] for entry in results["paths"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
