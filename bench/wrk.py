"""Non-streaming load with wrk (compiled, so the load generator is never the slow side).

A generated Lua script sets the POST body and headers and, in `done()`, prints the latency percentiles
(microseconds, from wrk's HdrHistogram) as one JSON line the runner parses.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50":%.1f,"p90":%.1f,"p99":%.1f,' ..
    '"p999":%.1f,"max":%.1f,"mean":%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_script(path: Path, body: bytes, headers: list[str]) -> Path:
    lines = []
    for header in headers:
        name, _, value = header.partition(":")
        lines.append(f"wrk.headers[{lua_string(name.strip())}] = {lua_string(value.strip())}")
    path.write_text(SCRIPT.format(body=lua_string(body.decode()), headers="\n".join(lines)))
    return path


def run(
    url: str,
    script: Path,
    *,
    connections: int,
    duration: float,
    prefix: list[str],
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """One wrk run (one thread: it shares a core with the mock); returns the same shape as load_client."""
    command = [
        *prefix,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout_s:g}s",
        "-s",
        str(script),
        url,
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120)
    found = re.search(r"^WRK_JSON (\{.*\})$", completed.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(
            f"wrk printed no result (exit {completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
        )
    raw = json.loads(found.group(1))
    elapsed = raw["duration_us"] / 1e6
    kinds = ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    errors = sum(raw[kind] for kind in kinds)
    return {
        "mode": "http",
        "tool": "wrk",
        "concurrency": connections,
        "elapsed_s": elapsed,
        "completed": raw["requests"] - raw["status_errors"],
        "errors": errors,
        "per_second": (raw["requests"] - raw["status_errors"]) / elapsed if elapsed else 0.0,
        "latency_ms": {key: raw[key] / 1000 for key in ("p50", "p90", "p99", "p999", "max", "mean")},
    }
