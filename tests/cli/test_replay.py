"""`gateway replay`: a recorded access log judged under a candidate config.

The log is recorded: the real gateway (a `gateway serve` process, LOG_FORMAT=json) answers about 250
requests through the provider simulator with the config of tests/fixtures/replay/old (keys, an allowlist, a
5/minute limit that refuses 3 requests, failovers, 404s, 401s, streams, Messages), then 3,000 more
lines are synthesized in the same format from a recorded line. The candidate (tests/fixtures/replay/new)
changes what is counted here by construction.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.replay_command import run_replay
from tests.support.harness import CLIENT_TIMEOUT, REPO_ROOT, gateway_process
from tests.support.simulator import ProviderSimulator
from tests.support.simulator_behaviour import Behaviour

FIXTURES = Path(__file__).parent.parent / "fixtures" / "replay"
OLD, NEW = FIXTURES / "old", FIXTURES / "new"
KEYS = {"TEAM_A_KEY": "key-team-a", "TEAM_B_KEY": "key-team-b", "TEAM_C_KEY": "key-team-c"}
KEYS["TEAM_D_KEY"] = "key-team-d"
ACCESS_LOGGER = "gateway.access_log"

# What the recording sends: (key, model, api, count).
RECORDED = [
    ("team-a", "sim-model", "chat", 100),
    ("team-a", "sim-model", "chat-stream", 20),
    ("team-a", "sim-model", "messages", 10),
    ("team-a", "fast", "chat", 20),
    ("team-a", "legacy", "chat", 20),
    ("team-a", "nope", "chat", 5),  # 404: no route
    ("team-b", "sim-model", "chat", 30),
    ("team-b", "legacy", "chat", 10),  # 403: not in team-b's models
    ("team-c", "fast", "chat", 8),  # 5 admitted, then 429 (5 per minute)
    ("team-a", "failover", "chat", 5),  # sim-model; the simulator answers 503 first: backup answers
    (None, "sim-model", "chat", 3),  # 401: no key (the line has no model: skipped by replay)
]
# Synthesized after the recording: (key, model, route, provider, upstream model, cost, count, first, step).
SYNTHESIZED = [
    ("team-a", "sim-model", "sim-model", "sim", "sim-model", "0.000042", 1000, 0.0, 0.9),
    ("team-b", "fast", "fast", "sim", "fast-v1", "0.000021", 800, 0.45, 1.1),
    ("team-a", "legacy", "legacy", "backup", "legacy", "0.000084", 400, 0.2, 2.0),
]
BURSTS, BURST_SIZE = 10, 80  # team-d: 80 requests 0.1 s apart every 90 s; the candidate admits 50 each
NOISE = ["not json at all", '{"logger": "uvicorn.error", "message": "x"}', '{"truncated": ', ""]


def _post(client: httpx.Client, key: str | None, model: str, api: str) -> None:
    headers = {"authorization": f"Bearer key-{key}"} if key else {}
    messages = [{"role": "user", "content": "say something short"}]
    if api == "messages":
        body: dict[str, Any] = {"model": model, "max_tokens": 50, "messages": messages}
        client.post("/v1/messages", json=body, headers=headers)
        return
    body = {"model": model, "messages": messages, "stream": api == "chat-stream"}
    client.post("/v1/chat/completions", json=body, headers=headers).read()


@pytest.fixture(scope="module")
def recorded_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The JSON log of a real gateway serving the RECORDED requests (every line it wrote)."""
    path = tmp_path_factory.mktemp("replay") / "recorded.log"
    with ProviderSimulator() as sim:
        env = {"LOG_FORMAT": "json", "SIM_URL": sim.base_url, **KEYS}
        with (
            gateway_process(OLD, env=env, extra_args=["--no-reload"]) as gateway,
            httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
        ):
            for key, model, api, count in RECORDED:
                for _ in range(count):
                    if model == "failover":
                        sim.enqueue(Behaviour(status=503))
                    _post(client, key, "sim-model" if model == "failover" else model, api)
    path.write_text(gateway.log_text(), encoding="utf-8")
    return path


def _access_entries(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("logger") == ACCESS_LOGGER:
            entries.append(entry)
    return entries


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@pytest.fixture(scope="module")
def full_log(recorded_log: Path) -> Path:
    """The recorded log, then NOISE and the SYNTHESIZED lines and team-d's bursts (in order of ends)."""
    recorded = _access_entries(recorded_log.read_text(encoding="utf-8"))
    template = next(
        e for e in recorded if e["status"] == 200 and e["kind"] == "complete" and e["api"] == "chat"
    )
    last = max(datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp() for e in recorded)
    base = float(int(last) + 3600)
    lines: list[tuple[float, str]] = []

    def add(end: float, key: str, model: str, route: str, provider: str, upstream: str, cost: str) -> None:
        entry = {
            **template,
            "time": _stamp(end),
            "request_id": f"req_syn_{len(lines)}",
            "model": model,
            "route": route,
            "provider": provider,
            "upstream_model": upstream,
            "key": key,
            "status": 200,
            "attempts": 1,
            "failovers": 0,
            "duration_ms": 50.0,
            "prompt_tokens": 10,
            "completion_tokens": 16,
            "cost": cost,
        }
        lines.append((end, json.dumps(entry)))

    for key, model, route, provider, upstream, cost, count, first, step in SYNTHESIZED:
        for number in range(count):
            add(base + first + number * step + 0.05, key, model, route, provider, upstream, cost)
    for burst in range(BURSTS):
        for number in range(BURST_SIZE):
            add(
                base + burst * 90 + number * 0.1 + 0.05,
                "team-d",
                "sim-model",
                "sim-model",
                "sim",
                "sim-model",
                "0.000042",
            )
    lines.sort()
    path = recorded_log.with_name("full.log")
    docker_prefixed = "2026-12-02T20:00:00.000000000Z stdout F " + lines[0][1]
    body = [recorded_log.read_text(encoding="utf-8").rstrip("\n"), *NOISE, docker_prefixed]
    path.write_text("\n".join(body + [line for _, line in lines[1:]]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tripwire() -> Iterator[str]:
    """A base URL on a listening socket; the test fails if anything connects to it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        with pytest.raises(BlockingIOError):
            sock.accept()  # nothing connected: no request was sent anywhere


def replay(log: Path, config: Path, url: str, baseline: Path | None = None) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    status = run_replay(
        str(config), str(log), str(baseline) if baseline else None, "json", out=out, environ={"SIM_URL": url}
    )
    report: dict[str, Any] = json.loads(out.getvalue())
    return status, report


def test_the_recorded_log_replayed_under_the_config_that_served_it_changes_nothing(
    recorded_log: Path, tripwire: str
) -> None:
    entries = _access_entries(recorded_log.read_text(encoding="utf-8"))
    assert len(entries) == sum(count for *_, count in RECORDED)
    assert sorted(e["status"] for e in entries if e["key"] == "team-c") == [200] * 5 + [429] * 3
    assert sum(1 for e in entries if e["failovers"] == 1 and e["provider"] == "backup") == 5
    assert sum(1 for e in entries if e["status"] == 403) == 10
    status, report = replay(recorded_log, OLD, tripwire)
    assert (status, report["changed"], report["changed_requests"]) == (0, 0, [])
    assert report["requests"] == len(entries) - 3  # the three 401s have no model
    assert report["skipped_requests"] == 3
    lines = recorded_log.read_text(encoding="utf-8").splitlines()
    assert report["skipped_lines"] == len(lines) - len(entries)


def test_a_candidate_config_changes_exactly_the_requests_it_should(full_log: Path, tripwire: str) -> None:
    status, report = replay(full_log, NEW, tripwire)
    assert status == 1
    fast = 800 + 20 + 5  # synthesized, team-a's and team-c's admitted ones
    legacy = 400 + 20 + 10  # synthesized, team-a's and team-b's refused ones
    limited = BURSTS * (BURST_SIZE - 50)
    assert report["changes_by_kind"] == {
        "route": legacy,
        "first_target": fast,
        "access": 30,
        "limit": limited,
        "cost": fast,
    }
    assert report["changed"] == legacy + fast + 30 + limited
    assert (
        report["requests"]
        == sum(c for *_, c in RECORDED) - 3 + sum(entry[6] for entry in SYNTHESIZED) + BURSTS * BURST_SIZE
    )
    assert len(report["changed_requests"]) == report["changed"]
    by_kind = {
        kind: {
            json.dumps(entry["changes"][kind])
            for entry in report["changed_requests"]
            if kind in entry["changes"]
        }
        for kind in report["changes_by_kind"]
    }
    assert by_kind["route"] == {json.dumps({"old": "legacy", "new": "no route (404)"})}
    assert by_kind["first_target"] == {json.dumps({"old": "sim/fast-v1", "new": "backup/fast-v2"})}
    assert by_kind["access"] == {json.dumps({"old": "allowed", "new": "denied (403 model_not_allowed)"})}
    assert by_kind["limit"] == {json.dumps({"old": "admitted", "new": "limited (requests_per_minute)"})}
    synthesized_fast = json.dumps({"old": "0.000021", "new": "0.000084"})
    assert synthesized_fast in by_kind["cost"]
    limited_ids = {e["request_id"] for e in report["changed_requests"] if "limit" in e["changes"]}
    bursts_start = sum(entry[6] for entry in SYNTHESIZED)  # request ids follow the order written
    assert limited_ids == {
        f"req_syn_{bursts_start + burst * BURST_SIZE + number}"
        for burst in range(BURSTS)
        for number in range(50, BURST_SIZE)  # the 51st to the 80th of each burst
    }


def test_against_a_baseline_config_the_same_requests_change(full_log: Path, tripwire: str) -> None:
    _, against_log = replay(full_log, NEW, tripwire)
    status, report = replay(full_log, NEW, tripwire, baseline=OLD)
    assert (status, report["compared_with"]) == (1, "baseline")
    assert report["changes_by_kind"] == against_log["changes_by_kind"]
    ids = {e["request_id"] for e in report["changed_requests"]}
    assert ids == {e["request_id"] for e in against_log["changed_requests"]}
    unchanged_status, unchanged = replay(full_log, OLD, tripwire, baseline=OLD)
    assert (unchanged_status, unchanged["changed"]) == (0, 0)


def test_the_cli_lists_and_counts_the_changes_in_text(full_log: Path, tripwire: str) -> None:
    command = [sys.executable, "-m", "gateway", "replay", str(full_log), "--config", str(NEW)]
    env = {"PATH": "/usr/bin:/bin", "SIM_URL": tripwire}  # no key secrets: placeholders stand in
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    total = sum(c for *_, c in RECORDED) - 3 + sum(entry[6] for entry in SYNTHESIZED) + BURSTS * BURST_SIZE
    assert lines[0].startswith(
        f"replayed {total} requests of {full_log} under {NEW}, compared with what the log"
    )
    assert lines[2] == "changed: 1585 requests, route 430, first_target 825, access 30, limit 300, cost 825"
    assert len(lines) == 3 + 1585
    moved = [line for line in lines if "model=fast key=team-b" in line]
    assert len(moved) == 800
    assert moved[0].endswith(
        "api=chat: first_target: sim/fast-v1 -> backup/fast-v2; cost: 0.000021 -> 0.000084"
    )


def test_unreadable_inputs_exit_2(tmp_path: Path, tripwire: str) -> None:
    out = io.StringIO()
    assert run_replay(str(NEW), str(tmp_path / "missing.log"), out=out, environ={"SIM_URL": tripwire}) == 2
    assert (
        out.getvalue()
        == f"cannot replay: cannot read {tmp_path / 'missing.log'}: No such file or directory\n"
    )
    broken = tmp_path / "routes.yaml"
    broken.write_text("routes: [\n", encoding="utf-8")
    out = io.StringIO()
    assert run_replay(str(broken), str(tmp_path / "missing.log"), out=out, environ={}) == 2
    assert out.getvalue().splitlines()[-1] == f"cannot replay: the candidate config in {broken} is invalid"
