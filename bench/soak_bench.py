"""Soak: many requests, half of them streams, 1% upstream faults and a usage-store outage, then idle.

What it shows: memory that stays flat once warm, file descriptors and pool connections that come back
to where they were, faults that the route absorbs (failover to its second target) and a store outage
that costs nothing but the limits while it lasts (`store_failure_mode: fail_open`).

Setup: the mock upstream (`bench/mock_upstream.py --fault-every 100`: in turn a 503, a connection
dropped before the head, and one cut mid-body) on core 0 with the load client; one gateway process
(`gateway serve --no-reload`, LOG_LEVEL=WARNING) on core 1 with a route of two targets that both reach
the mock, a gateway key with limits and a private `redis-server` as its usage store. The store is
stopped from 30% to 50% of the requests. Every second: the gateway's RSS, its open file descriptors and
its pool (`/health`). After the load the client closes its connections and the gateway idles.

    .venv/bin/python bench/soak_bench.py                       # 100,000 requests (~10 min) + 2 min idle
    .venv/bin/python bench/soak_bench.py --smoke               # CI: ~1 minute
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis as redis_client
import uvloop

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import Service, free_port, pinned, rss_mb, wait_for_port
from bench.run import prepare_process
from gateway.access.keys import hash_secret

REPO = Path(__file__).resolve().parent.parent
KEY = "sk-soak-0123456789"
MODEL = "soak-model"
STREAM_PROMPT = "bench:tokens=8,delay_ms=2"


@dataclass(slots=True)
class Sample:
    at: float  # seconds since the load started
    done: int  # requests finished
    rss_mb: float
    fds: int
    pool_in_use: int
    pool_idle: int
    phase: str


@dataclass(slots=True)
class SoakResult:
    requests: int
    seconds: float
    outcomes: dict[str, int]
    rss_warm_mb: float
    rss_end_mb: float
    rss_idle_mb: float
    rss_growth_percent: float
    fds_baseline: int
    fds_after_idle: int
    pool_after_idle: dict[str, int]
    store_connections_added: int  # the gateway's Redis pool grew under load (it keeps them)
    fds_unexplained: int  # after idle, beyond the baseline, the idle upstream pool and the store's pool
    store_outage: bool
    samples: list[Sample] = field(default_factory=list)


def gateway_config(mock_port: int, redis_url: str | None) -> str:
    store = (
        f"settings:\n  stats_store: {redis_url}\n  stats_store_prefix: soak\n"
        "  store_failure_mode: fail_open\n"
        if redis_url
        else ""
    )
    provider = (
        "    type: openai\n    base_url: http://127.0.0.1:{port}/v1\n    health_check: {{enabled: false}}\n"
    )
    return (
        "providers:\n"
        + "".join(f"  {name}:\n" + provider.format(port=mock_port) for name in ("first", "second"))
        + textwrap.dedent(f"""\
        routes:
          {MODEL}:
            targets: [{{provider: first}}, {{provider: second}}]
        keys:
          soak:
            secret: {hash_secret(KEY)}
            limits: {{requests_per_minute: 10000000}}
        """)
        + store
    )


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def one_request(client: httpx.AsyncClient, index: int) -> str:
    """One request; its outcome: ok, or the kind of failure the client saw."""
    stream = index % 2 == 1
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": STREAM_PROMPT}]}
    try:
        if not stream:
            response = await client.post("/v1/chat/completions", json=body)
            if response.status_code != 200:
                return f"http_{response.status_code}"
            return "ok" if response.json()["choices"] else "bad_body"
        body["stream"] = True
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            if response.status_code != 200:
                await response.aread()
                return f"stream_http_{response.status_code}"
            text = (await response.aread()).decode()
        if text.rstrip().endswith("data: [DONE]"):
            return "ok"
        return "stream_error_event" if '"error"' in text else "stream_truncated"
    except httpx.HTTPError as exc:
        return f"client_{type(exc).__name__}"


async def health_pool(client: httpx.AsyncClient) -> tuple[int, int]:
    providers = (await client.get("/health")).json()["providers"]
    pools = [p.get("pool") or {} for p in providers.values()]
    return sum(p.get("in_use", 0) for p in pools), sum(p.get("idle", 0) for p in pools)


async def soak(args: argparse.Namespace, pid: int, base_url: str, redis: RedisControl | None) -> SoakResult:
    outcomes: Counter[str] = Counter()
    samples: list[Sample] = []
    done = 0
    phase = "load"
    started = time.monotonic()
    headers = {"authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as probe:
        await health_pool(probe)  # the probe's own connection is part of the baseline
        fds_baseline = open_fds(pid)
        store_baseline = redis.clients() if redis is not None else 0

        async def sample() -> None:
            in_use, idle = await health_pool(probe)
            samples.append(
                Sample(
                    round(time.monotonic() - started, 1),
                    done,
                    rss_mb(pid),
                    open_fds(pid),
                    in_use,
                    idle,
                    phase,
                )
            )

        async def sampler() -> None:
            while True:
                await asyncio.sleep(1.0)
                await sample()

        sampling = asyncio.create_task(sampler())
        try:
            async with httpx.AsyncClient(
                base_url=base_url, timeout=30.0, limits=limits, headers=headers
            ) as client:
                next_index = 0

                async def worker() -> None:
                    nonlocal next_index, done
                    while next_index < args.requests:
                        index = next_index
                        next_index += 1
                        outcomes[await one_request(client, index)] += 1
                        done += 1
                        if redis is not None:
                            redis.follow(done / args.requests)

                await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            load_seconds = time.monotonic() - started
            await sample()
            rss_end = samples[-1].rss_mb
            phase = "idle"
            await asyncio.sleep(args.idle)
            await sample()
        finally:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
    warm = next((s for s in samples if s.done >= args.requests * 0.2), samples[0])
    idle = samples[-1]
    store_added = redis.clients() - store_baseline if redis is not None else 0
    return SoakResult(
        requests=args.requests,
        seconds=round(load_seconds, 1),
        outcomes=dict(outcomes),
        rss_warm_mb=warm.rss_mb,
        rss_end_mb=rss_end,
        rss_idle_mb=idle.rss_mb,
        rss_growth_percent=round(100 * (rss_end - warm.rss_mb) / warm.rss_mb, 2),
        fds_baseline=fds_baseline,
        fds_after_idle=idle.fds,
        pool_after_idle={"in_use": idle.pool_in_use, "idle": idle.pool_idle},
        store_connections_added=store_added,
        fds_unexplained=idle.fds - fds_baseline - idle.pool_idle - store_added,
        store_outage=redis is not None,
        samples=samples,
    )


class RedisControl:
    """A private redis-server, stopped for a share of the run and started again on the same port."""

    def __init__(self, binary: str, workdir: Path, down_from: float, down_until: float) -> None:
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        self.down_from, self.down_until = down_from, down_until
        self.process: subprocess.Popen[bytes] | None = None
        self.stopped_once = self.restarted = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        self.process = subprocess.Popen(
            command, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        service = Service("redis", [], self.workdir / "redis.log")
        service.process = self.process
        wait_for_port(service, self.port, 20.0)

    def clients(self) -> int:
        """Connections Redis holds from others than this call (the gateway's pool)."""
        with redis_client.Redis(port=self.port, socket_timeout=2) as client:
            return len(client.client_list()) - 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def follow(self, progress: float) -> None:
        """Called as requests finish: down at `down_from`, back at `down_until`."""
        if not self.stopped_once and progress >= self.down_from:
            self.stopped_once = True
            self.stop()
        elif self.stopped_once and not self.restarted and progress >= self.down_until:
            self.restarted = True
            self.start()


def run(args: argparse.Namespace) -> SoakResult:
    prepare_process()
    binary = shutil.which("redis-server")
    with tempfile.TemporaryDirectory(prefix="gw-soak-") as tmp:
        workdir = Path(tmp)
        redis = RedisControl(binary, workdir, 0.3, 0.5) if binary and not args.no_store else None
        mock_port, port = free_port(), free_port()
        mock = Service(
            "mock",
            pinned([sys.executable, "-m", "bench.mock_upstream", "--port", str(mock_port), "--fault-every",
                    str(args.fault_every)], "0"),
            workdir / "mock.log",
            cwd=REPO,
        )  # fmt: skip
        config = workdir / "routes"
        config.mkdir()
        gateway = Service(
            "gateway",
            pinned([sys.executable, "-m", "gateway", "serve", "--no-reload", "--config", str(config),
                    "--port", str(port)], "1"),
            workdir / "gateway.log",
            env={"LOG_LEVEL": "WARNING"},
            cwd=REPO,
        )  # fmt: skip
        try:
            if redis is not None:
                redis.start()
            (config / "routes.yaml").write_text(gateway_config(mock_port, redis.url if redis else None))
            mock.start()
            wait_for_port(mock, mock_port, 20.0)
            gateway.start()
            wait_for_port(gateway, port, 60.0)
            result = uvloop.run(soak(args, gateway.pid, f"http://127.0.0.1:{port}", redis))
        finally:
            gateway.stop()
            mock.stop()
            if args.keep_log:
                shutil.copy(workdir / "gateway.log", args.keep_log)
            if redis is not None:
                redis.stop()
    return result


def report(result: SoakResult) -> str:
    faults = sum(count for outcome, count in result.outcomes.items() if outcome != "ok")
    lines = [
        f"{result.requests} requests in {result.seconds} s ({result.requests / result.seconds:.0f}/s), "
        f"half streams; outcomes {result.outcomes} ({faults} not ok)",
        f"RSS: {result.rss_warm_mb:.1f} MB warm (20% of requests) -> {result.rss_end_mb:.1f} MB at the end "
        f"({result.rss_growth_percent:+.2f}%) -> {result.rss_idle_mb:.1f} MB after idle",
        f"open files: {result.fds_baseline} before the load, {result.fds_after_idle} after idle; "
        f"pool after idle {result.pool_after_idle}, store pool +{result.store_connections_added}: "
        f"{result.fds_unexplained} unexplained",
        "store outage (30%-50% of requests): "
        + ("yes" if result.store_outage else "no (no redis-server, or --no-store)"),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--idle", type=float, default=120.0, help="seconds of idling after the load")
    parser.add_argument("--fault-every", type=int, default=100, help="1 in N upstream answers is a fault")
    parser.add_argument("--no-store", action="store_true", help="no Redis store and no outage")
    parser.add_argument("--smoke", action="store_true", help="CI: 6,000 requests and 10 s of idling")
    parser.add_argument("--json", type=Path, help="write the result (samples included) here")
    parser.add_argument("--keep-log", type=Path, help="copy the gateway's log (WARNING and up) here")
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.idle = 6_000, 10.0
    result = run(args)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
