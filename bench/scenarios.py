"""The benchmark scenarios and how one is measured against one target.

Around every measurement the runner reads the CPU time of the proxy, the mock and the load generator and
the busy time of each core, so each result says whether the proxy was the limit (its core near 100%),
whether the mock was not (its share of core 0), and how much of each core other processes took (noise).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bench import wrk
from bench.load_client import chat_body
from bench.processes import core_busy_seconds, cpu_seconds, pinned, rss_mb
from bench.targets import MODEL, REPO, Target

Kind = Literal["idle", "http", "stream", "open_streams"]
Profile = Literal["full", "quick", "smoke"]


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    kind: Kind
    concurrency: int = 1
    duration: float = 10.0
    tokens: int = 20
    delay_ms: float = 0.0
    ramp_ms: float = 0.0


def scenarios(profile: Profile) -> list[Scenario]:
    """The scenarios of the issue; `quick` and `smoke` shorten them (smoke also shrinks them)."""
    seconds = {"full": 10.0, "quick": 3.0, "smoke": 0.5}[profile]
    small = profile == "smoke"
    c50 = 10 if small else 50
    return [
        Scenario("idle", "Idle RSS", "idle"),
        Scenario("http_c1", "Non-streaming, concurrency 1", "http", 1, seconds),
        Scenario("http_c50", f"Non-streaming, concurrency {c50}", "http", c50, seconds),
        Scenario("stream_c1", "Streaming 20 tokens, concurrency 1", "stream", 1, seconds, tokens=20),
        Scenario("stream_c50", f"Streaming 20 tokens, concurrency {c50}", "stream", c50, seconds, tokens=20),
        Scenario(
            "stream_200",
            f"{20 if small else 200} streams at 20 ms per token",
            "stream",
            20 if small else 200,
            seconds,
            tokens=5 if small else 50,
            delay_ms=20.0,
            # Starts spread over one stream's length (50 x 20 ms): streams in steady state, at every phase.
            # Started within one token interval instead, all 200 end and restart together every second,
            # and the figure measures a burst of 200 request setups rather than relaying.
            ramp_ms=100.0 if small else 1000.0,
        ),
        Scenario(
            "open_1000",
            f"{50 if small else 1000} open streams at 1 token/s (RSS)",
            "open_streams",
            50 if small else 1000,
            0.0,
            tokens={"full": 20, "quick": 10, "smoke": 2}[profile],
            delay_ms=200.0 if small else 1000.0,
            ramp_ms=200.0 if small else 3000.0,
        ),
    ]


@dataclass(slots=True)
class Probes:
    """What the runner watches: the proxy (None when direct), the mock, and whether to use wrk."""

    mock_pid: int
    workdir: Path
    use_wrk: bool
    proxy_core: str = "1"


def measure(scenario: Scenario, target: Target, probes: Probes) -> dict[str, Any]:
    pid = target.pid
    if scenario.kind == "idle":
        return {"rss_mb": rss_mb(pid) if pid is not None else None}
    before = _snapshot(pid, probes.mock_pid)
    peak_rss = 0.0
    if scenario.kind == "http" and probes.use_wrk:
        script = wrk.write_script(
            probes.workdir / f"{target.name}.lua", chat_body(MODEL, stream=False), target.headers
        )
        result = wrk.run(
            target.url,
            script,
            connections=scenario.concurrency,
            duration=scenario.duration,
            prefix=pinned([], "0"),
        )
    else:
        result, peak_rss = _run_client(scenario, target, pid)
    after = _snapshot(pid, probes.mock_pid)
    wall = after["wall"] - before["wall"]

    def share(key: str) -> float:
        return round(100 * (after[key] - before[key]) / wall, 1) if wall > 0 else 0.0

    cpu = {"mock_pct": share("mock"), "client_pct": share("client")}
    if pid is not None:
        cpu["proxy_pct"] = share("proxy")
        if result.get("completed"):  # CPU per request: the figure other processes' noise barely moves
            cpu["proxy_us_per_request"] = round(
                1e6 * (after["proxy"] - before["proxy"]) / result["completed"]
            )
        cpu["noise_core1_pct"] = round(max(0.0, share("core1") - cpu["proxy_pct"]), 1)
    else:
        cpu["noise_core1_pct"] = share("core1")
    cpu["noise_core0_pct"] = round(max(0.0, share("core0") - cpu["mock_pct"] - cpu["client_pct"]), 1)
    result["cpu"] = cpu
    if pid is not None:
        result["rss_mb_after"] = rss_mb(pid)
        if peak_rss:
            result["rss_mb_peak"] = peak_rss
    return result


def _snapshot(proxy_pid: int | None, mock_pid: int) -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished load generators (wrk, clients)
    cores = core_busy_seconds()
    return {
        "wall": time.monotonic(),
        "proxy": cpu_seconds(proxy_pid) if proxy_pid is not None else 0.0,
        "mock": cpu_seconds(mock_pid),
        "client": usage.ru_utime + usage.ru_stime,
        "core0": cores.get("cpu0", 0.0),
        "core1": cores.get("cpu1", 0.0),
    }


def _run_client(scenario: Scenario, target: Target, proxy_pid: int | None) -> tuple[dict[str, Any], float]:
    """The asyncio client in its own process on core 0; samples the proxy's RSS while it runs."""
    mode = "http" if scenario.kind == "http" else "stream"
    command = [
        sys.executable,
        "-m",
        "bench.load_client",
        mode,
        "--url",
        target.url,
        "--model",
        MODEL,
        "-c",
        str(scenario.concurrency),
        "-d",
        str(scenario.duration),
        "--tokens",
        str(scenario.tokens),
        "--delay-ms",
        str(scenario.delay_ms),
        "--ramp-ms",
        str(scenario.ramp_ms),
    ]
    for header in target.headers:
        command += ["--header", header]
    if scenario.kind == "open_streams":
        command += ["--once", "--warmup", "0"]
    expected = scenario.duration + scenario.tokens * scenario.delay_ms / 1000 + scenario.ramp_ms / 1000
    process = subprocess.Popen(pinned(command, "0"), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0.0
    deadline = time.monotonic() + expected + 180
    while process.poll() is None:
        if proxy_pid is not None:
            peak = max(peak, rss_mb(proxy_pid))
        if time.monotonic() > deadline:
            process.kill()
            break
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    lines = stdout.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"load client failed (exit {process.returncode}): {stderr.decode()[-2000:]}")
    return json.loads(lines[-1]), peak
