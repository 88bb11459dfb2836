"""What OpenTelemetry tracing costs on the chat JSON path: the same load with tracing off and on.

    .venv/bin/python bench/tracing_overhead.py                              # 8 rounds, 2 s each
    .venv/bin/python bench/tracing_overhead.py --baseline ae58703 --json out.json

Variants (one `gateway serve` process each, one worker, metrics off and LOG_LEVEL=WARNING so only
tracing differs; all started at once, idle but for the one being measured):
- `before` (with `--baseline REV`): the gateway's source at git revision REV (before tracing existed),
  run from a `git archive` copy: what "off costs nothing" is measured against; `before-on`: REV's source
  with tracing on (a before/after of a change to tracing, in the same run);
- `off`: this tree, tracing off (the default);
- `on`: `OTEL_TRACES_EXPORTER=otlp`, every request sampled, exported over OTLP/HTTP (the official
  exporter, batch processor defaults) to a sink on core 0 that reads and acknowledges each export;
- `on@10%`: the same with `OTEL_TRACES_SAMPLER=parentbased_traceidratio`, `OTEL_TRACES_SAMPLER_ARG=0.1`.

The load, pinning, pairing and medians are those of `bench/metrics_overhead.py` (wrk -t1 -c50 against
the fast mock upstream; wrk, mock and sink on core 0, the gateways on core 1; each round measures every
variant back to back in a rotating order, and a cost is the median of each round's ratio to `off`). Each
gateway's span exporter process (observe/span_export.py) is moved to `--exporter-core` (0), as the OS
would give it a core of its own: its CPU per request is reported apart, and so are the spans the sink
received per request sent (2.00 when none were dropped; fewer when the exporter could not keep up and the
gateway's bounded queue dropped them, which also makes that variant's figures look cheaper).
`micro` times the spans of one request alone in this process (CPU time: one SERVER and one CLIENT span,
their attributes and the batch processor's queue, with an exporter that drops them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.metrics_overhead import (
    CONNECTIONS,
    core_busy_seconds,
    cpu_seconds,
    free_port,
    gateway_config,
    pinned,
    run_wrk,
    stop,
    wait_for_port,
    write_script,
)

ROOT = Path(__file__).resolve().parent.parent
# A fixed hash seed too: each variant is a process of its own, and one seeded differently lays out its
# dicts differently (a difference of a few percent that is no variant's).
QUIET = {
    "GATEWAY_METRICS": "0",
    "LOG_LEVEL": "WARNING",
    "OTEL_TRACES_EXPORTER": "none",
    "PYTHONHASHSEED": "0",
}
ON = {"OTEL_TRACES_EXPORTER": "otlp"}
VARIANTS: dict[str, dict[str, str]] = {
    "before": {},
    "before-on": ON,  # the baseline's tracing, every request sampled: a before/after of a tracing change
    "off": {},
    "off-again": {},  # a second process of `off`: how far two processes of the same code differ
    "on": ON,
    "on@10%": {**ON, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    "on@1%": {**ON, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"},
    "on@0%": {**ON, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
}


async def serve_sink(port: int) -> None:
    """An OTLP/HTTP sink: reads each POST body (keep-alive), counts its spans per request path (one path per
    variant) and answers 200 with an empty export response; `GET /counts` answers the counts as JSON."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    counts: dict[str, int] = {}

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, path = head.split(b" ", 2)[:2]
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                if method == b"GET":
                    answer = json.dumps(counts).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer))
                    await writer.drain()
                    continue
                export = ExportTraceServiceRequest.FromString(body)
                spans = sum(
                    len(scope.spans) for resource in export.resource_spans for scope in resource.scope_spans
                )
                counts[path.decode()] = counts.get(path.decode(), 0) + spans
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def sink_counts(port: int) -> dict[str, int]:
    """Spans the sink has received, per export path."""
    counts: dict[str, int] = httpx.get(f"http://127.0.0.1:{port}/counts").json()
    return counts


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


class Gateway:
    """One `gateway serve` process of a variant (from `source`), pinned to core 1; its span exporter
    process (if tracing is on) to `exporter_core`."""

    def __init__(
        self, variant: str, config: Path, workdir: Path, source: Path, sink_port: int, exporter_core: str
    ) -> None:
        self.variant = variant
        self.requests = 0  # sent to it in all, warm-up included: what the sink's span count is set against
        self.port = free_port()
        self.log_path = workdir / f"gateway-{variant.replace('%', '')}.log"
        command = [sys.executable, "-m", "gateway", "serve", "--config", str(config)]
        command += ["--port", str(self.port), "--host", "127.0.0.1", "--no-reload"]
        env = {**os.environ, **QUIET, **VARIANTS[variant], "PYTHONPATH": str(source)}
        # One export path per variant: the sink counts each one's spans apart.
        self.export_path = f"/{variant.replace('%', '')}/v1/traces"
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"http://127.0.0.1:{sink_port}{self.export_path}"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(pinned(command, "1"), cwd=source, env=env, stdout=log, stderr=log)
        wait_for_port(self.port, self.process)
        # The exporter inherits the gateway's core; in production it runs where the OS puts it, so here it
        # gets a core of its own (or of the load's), and its CPU is measured apart.
        self.exporters = children(self.process.pid)
        for pid in self.exporters:
            subprocess.run(
                ["taskset", "-p", "-c", exporter_core, str(pid)], check=True, stdout=subprocess.DEVNULL
            )

    def exporter_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.exporters if Path(f"/proc/{pid}").exists())

    def measure(self, script: Path, seconds: float) -> dict[str, float]:
        before, core_before = cpu_seconds(self.process.pid), core_busy_seconds(1)
        exporter_before = self.exporter_seconds()
        raw = run_wrk(self.port, script, seconds)
        spent = cpu_seconds(self.process.pid) - before
        exporter_spent = self.exporter_seconds() - exporter_before
        self.requests += raw["requests"]
        if not raw["requests"]:
            raise RuntimeError(f"{self.variant}: no request completed:\n{self.log_path.read_text()[-2000:]}")
        elapsed = raw["duration_us"] / 1e6
        return {
            "per_second": raw["requests"] / elapsed,
            "cpu_us_per_request": spent / raw["requests"] * 1e6,
            # Batches leave every OTEL_BSP_SCHEDULE_DELAY: a rate over the rounds, not exact per round.
            "exporter_cpu_us_per_request": exporter_spent / raw["requests"] * 1e6,
            "p50_ms": raw["p50"] / 1000,
            "p99_ms": raw["p99"] / 1000,
            "noise_pct": max(0.0, (core_busy_seconds(1) - core_before - spent) / elapsed * 100),
        }


def export_source(revision: str, directory: Path) -> Path:
    """The `gateway/` package at `revision`, unpacked under `directory`."""
    archive = directory / "baseline.tar"
    subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), revision, "gateway"], cwd=ROOT, check=True
    )
    target = directory / "baseline"
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return target


def micro_costs(iterations: int = 20_000) -> dict[str, float]:
    """CPU microseconds of one request's spans as the request path builds and queues them, with their
    share of the writer thread's framing (JSON, best of 5), and of the off check."""
    from gateway.observe.span_wire import frame
    from gateway.observe.trace_sampling import SamplingRule, UnsampledTrace
    from gateway.observe.tracing import Tracing
    from gateway.records import RequestRecord

    class Keep:
        def __init__(self) -> None:
            self.spans: list[tuple[Any, ...]] = []

        def add(self, span: tuple[Any, ...]) -> None:
            self.spans.append(span)

        def shutdown(self) -> None:
            pass

    sink = Keep()
    tracing = Tracing(sink, sampling=SamplingRule(True, 1.0))
    usage = {"prompt_tokens": 12, "completion_tokens": 9}
    record = RequestRecord("req_1", "bench", "bench", "mock", "bench", False, 200, 1, 0.001, usage=usage)
    body = {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}
    answer = b'{"id":"chatcmpl-1","model":"bench","choices":[],"usage":{"prompt_tokens":12}}'
    parsed = {"id": "chatcmpl-1", "model": "bench", "choices": [], "usage": {"prompt_tokens": 12}}  # as the
    # record's usage parsed it (`Completion.answer`): the span reads it, it does not parse it again
    headers = [(b"content-type", b"application/json")]  # as in the ASGI scope

    def one_request() -> None:
        trace = tracing.request("POST", "/v1/chat/completions", headers)
        trace.attempt(1, "mock", "openai", "bench", "http://127.0.0.1:9/v1")
        trace.completed(parsed, usage)
        if not isinstance(trace, UnsampledTrace):
            trace.finish(record, body, answer)

    class State:
        tracing: Tracing | None = None

    state = State()

    def off_check() -> None:
        if state.tracing is not None:
            raise AssertionError

    def timed(call: Any, count: int) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.thread_time()
            for _ in range(count):
                call()
            best = min(best, (time.thread_time() - started) / count)
        return best * 1e6

    costs = {"spans of one request (on)": timed(one_request, iterations // 5)}
    batch = sink.spans[:512]
    costs["their framing (writer thread)"] = timed(lambda: frame(batch), 20) / len(batch)
    costs["the off check"] = timed(off_check, iterations * 10)
    return costs


def summarize(
    results: list[dict[str, dict[str, float]]], variants: list[str], exported: dict[str, float]
) -> dict[str, Any]:
    """Medians per variant; `exported`: spans the sink received per request sent, per variant."""
    rows: dict[str, Any] = {}
    for variant in variants:
        row = {key: statistics.median(one[variant][key] for one in results) for key in results[0][variant]}
        throughput = [one[variant]["per_second"] / one["off"]["per_second"] for one in results]
        cpu = [one[variant]["cpu_us_per_request"] / one["off"]["cpu_us_per_request"] for one in results]
        row["throughput_change_pct"] = (statistics.median(throughput) - 1) * 100
        row["throughput_spread_pts"] = (max(throughput) - min(throughput)) * 100
        row["cpu_change_pct"] = (statistics.median(cpu) - 1) * 100
        row["spans_per_request"] = exported.get(variant, 0.0)
        rows[variant] = row
    return rows


def render(rows: dict[str, Any], costs: dict[str, float], args: argparse.Namespace) -> str:
    lines = [
        f"tracing overhead, chat JSON: {args.rounds} rounds x {args.seconds:g} s per variant, wrk -t1 "
        f"-c{CONNECTIONS}; medians, and the median of each round's ratio to `off`",
        "",
        "| variant | req/s | vs off | spread | gateway CPU us/req | vs off | exporter CPU us/req | spans/req "
        "exported | p50 ms | p99 ms | noise |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, row in rows.items():
        lines.append(
            f"| {variant} | {row['per_second']:,.0f} | {row['throughput_change_pct']:+.1f}% | "
            f"{row['throughput_spread_pts']:.0f} pts | {row['cpu_us_per_request']:.0f} | "
            f"{row['cpu_change_pct']:+.1f}% | {row['exporter_cpu_us_per_request']:.0f} | "
            f"{row['spans_per_request']:.2f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
            f"{row['noise_pct']:.0f}% |"
        )
    lines += ["", "| alone, in this process | CPU us |", "|---|---|"]
    lines += [f"| {name} | {cost:.3f} |" for name, cost in costs.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--baseline", help="git revision before tracing: adds the `before` variant")
    parser.add_argument("--only", help="comma-separated variants to run (`off` always runs: the reference)")
    parser.add_argument("--json", type=Path, help="also write the raw rounds and the summary here")
    parser.add_argument("--exporter-core", default="0", help="the core the span exporter processes run on")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)  # run as the OTLP sink on this port
    args = parser.parse_args(argv)
    if args.sink:
        asyncio.run(serve_sink(args.sink))
        return 0
    variants = [name for name in VARIANTS if not name.startswith("before") or args.baseline]
    if args.only:
        variants = [name for name in variants if name in args.only.split(",") or name == "off"]
    with tempfile.TemporaryDirectory(prefix="tracing-overhead-") as directory:
        workdir = Path(directory)
        baseline = export_source(args.baseline, workdir) if args.baseline else None
        mock_port, sink_port = free_port(), free_port()
        helpers = [
            subprocess.Popen(
                pinned([sys.executable, "-m", "bench.mock_upstream", "--port", str(mock_port)], "0"),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                pinned([sys.executable, "-m", "bench.tracing_overhead", "--sink", str(sink_port)], "0"),
                cwd=ROOT,
            ),
        ]
        gateways: dict[str, Gateway] = {}
        try:
            wait_for_port(mock_port, helpers[0])
            wait_for_port(sink_port, helpers[1])
            config = gateway_config(workdir, mock_port)
            script = write_script(workdir, "http", stream=False)
            for variant in variants:
                source = baseline if variant.startswith("before") and baseline is not None else ROOT
                gateways[variant] = Gateway(variant, config, workdir, source, sink_port, args.exporter_core)
            for gateway in gateways.values():
                gateway.measure(script, 1)  # warm up
            results: list[dict[str, dict[str, float]]] = []
            for number in range(args.rounds):
                order = variants[number % len(variants) :] + variants[: number % len(variants)]
                one = {variant: gateways[variant].measure(script, args.seconds) for variant in order}
                results.append(one)
                figures = ", ".join(f"{variant} {one[variant]['per_second']:,.0f}/s" for variant in order)
                print(f"round {number + 1}: {figures}", file=sys.stderr)
            for gateway in gateways.values():
                stop(gateway.process)  # its exporter sends what is left, then exits
            counts = sink_counts(sink_port)
            exported = {
                name: counts.get(gateway.export_path, 0) / gateway.requests
                for name, gateway in gateways.items()
            }
        finally:
            for gateway in gateways.values():
                stop(gateway.process)
            for helper in helpers:
                stop(helper)
    rows = summarize(results, variants, exported)
    costs = micro_costs()
    print(render(rows, costs, args))
    if args.json:
        args.json.write_text(json.dumps({"rounds": results, "summary": rows, "micro": costs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
