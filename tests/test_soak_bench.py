"""CI's one-minute soak (`bench/soak_bench.py --smoke`): 6,000 requests, half streams, 1% upstream faults
and a Redis outage from 30% to 50% of them. The faults are absorbed by failover except a stream cut after
its first byte (then one error event); memory, files and pools come back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.mock_upstream import FAULTS

ROOT = Path(__file__).resolve().parent.parent
REQUESTS, FAULT_EVERY = 6_000, 100


@pytest.mark.timeout(300)
def test_the_soak_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    command = [sys.executable, str(ROOT / "bench" / "soak_bench.py"), "--smoke", "--json", str(out)]
    if shutil.which("redis-server") is None:
        command.append("--no-store")  # the outage needs a redis-server; the rest runs without
    finished = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    result = json.loads(out.read_text())
    assert result["requests"] == REQUESTS
    outcomes = result["outcomes"]
    assert sum(outcomes.values()) == REQUESTS
    # Only a stream cut mid-way reaches a client (as an error event): every third fault is a cut, half
    # of the requests are streams; a 503 or a dropped connection is failed over to the second target.
    cuts_on_streams = REQUESTS // FAULT_EVERY // len(FAULTS) // 2
    # A client-side read error was seen 2 times in 100,000 on a loaded machine (bench/README.md, not yet
    # explained): one is tolerated here, more fail.
    assert set(outcomes) <= {"ok", "stream_error_event", "client_ReadError"}, outcomes
    assert outcomes.get("client_ReadError", 0) <= 1, outcomes
    assert outcomes.get("stream_error_event", 0) <= 2 * cuts_on_streams + 2
    assert result["rss_growth_percent"] < 10
    assert result["pool_after_idle"]["in_use"] == 0
    assert result["fds_unexplained"] == 0
    assert result["store_outage"] == (shutil.which("redis-server") is not None)
