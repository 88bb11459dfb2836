"""Capacity with the provider's default settings (no `pool:` block), beside nginx in the same run.

    .venv/bin/python bench/capacity_bench.py            # both scenarios, nginx and gateway-asgi
    .venv/bin/python bench/capacity_bench.py --json out.json

- burst: 1,000 concurrent streams through one provider, 8 tokens at 1 s each, all started at once. What
  counts: every stream served (0 errors), all 1,000 open at the upstream at the same moment (the peak of
  established connections to the mock, sampled with `ss`), and time to first byte p99 against nginx's.
- steady: 200 concurrent streams at 20 ms per token (bench/scenarios.py `stream_200`): added per-chunk
  delay p99 and streams/s against nginx's.

The mock and the load client run on core 0, the proxy on core 1, as in bench/run.py.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import free_port, wait_for_port
from bench.run import prepare_process
from bench.scenarios import Probes, Scenario, measure, scenarios
from bench.targets import build_target, missing_reason, mock_service, start

TARGETS = ("direct", "nginx", "gateway-asgi")
BURST = Scenario("burst_1000", "1,000 streams at once, 8 tokens at 1 s", "open_streams", 1000, 0.0, tokens=8,
                 delay_ms=1000.0, ramp_ms=0.0)  # fmt: skip


def established_to(port: int) -> int:
    """Established TCP connections whose local port is `port` (the mock's accepted connections)."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True
    ).stdout
    return sum(1 for line in out.splitlines() if line.strip())


class PeakSampler:
    def __init__(self, port: int) -> None:
        self.port = port
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, established_to(self.port))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", default=",".join(TARGETS))
    args = parser.parse_args(argv)
    prepare_process()
    steady = next(s for s in scenarios("full") if s.key == "stream_200")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-capacity-"))
    workdir.chmod(0o755)
    mock_port = free_port()
    mock = mock_service(workdir, mock_port, "0").start()
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        wait_for_port(mock, mock_port, 30)
        probes = Probes(mock_pid=mock.pid, workdir=workdir, use_wrk=False)
        for name in args.only.split(","):
            reason = missing_reason(name)
            if reason:
                print(f"skip {name}: {reason}", file=sys.stderr)
                continue
            target = build_target(name, workdir, mock_port, "1")
            try:
                start(target)
                steady_result = measure(steady, target, probes)  # first: no burst's aftermath in it
                time.sleep(2)
                with PeakSampler(mock_port) as sampler:
                    burst = measure(BURST, target, probes)
                burst["upstream_peak_connections"] = sampler.peak
                results[name] = {"burst": burst, "steady": steady_result}
                print(f"{name}: {summary(results[name])}", file=sys.stderr, flush=True)
            finally:
                if target.service is not None:
                    target.service.stop()
    finally:
        mock.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(render(results))
    return 0


def summary(entry: dict[str, Any]) -> str:
    burst, steady = entry["burst"], entry["steady"]
    return (
        f"burst completed={burst['completed']} errors={burst['errors']} "
        f"upstream_peak={burst['upstream_peak_connections']} ttfb_p99={burst['ttfb_ms']['p99']:.1f}ms | "
        f"steady {steady['per_second']:.1f}/s chunk_p99={steady['chunk_delay_ms']['p99']:.2f}ms "
        f"errors={steady['errors']}"
    )


def render(results: dict[str, Any]) -> str:
    lines = [
        f"Run of {results['date']} (`bench/capacity_bench.py`), provider defaults (no `pool:` block).",
        "",
        "| target | burst: served / 1,000 | errors | open at upstream (peak) | TTFB p50 / p99 ms | "
        "steady: streams/s | chunk delay p50 / p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, entry in results.items():
        if name == "date":
            continue
        burst, steady = entry["burst"], entry["steady"]
        lines.append(
            f"| {name} | {burst['completed']} | {burst['errors']} | {burst['upstream_peak_connections']} | "
            f"{burst['ttfb_ms']['p50']:.1f} / {burst['ttfb_ms']['p99']:.1f} | {steady['per_second']:.1f} | "
            f"{steady['chunk_delay_ms']['p50']:.2f} / {steady['chunk_delay_ms']['p99']:.2f} | "
            f"{steady['errors']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
