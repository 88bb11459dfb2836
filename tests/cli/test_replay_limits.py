"""`gateway replay` in process, on small logs written here: token limits re-simulated over the log's
times, shadow limits, and which lines are read as requests."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.replay_command import run_replay
from gateway.replay_log import ReadCounts, read_access_log

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC).timestamp()
CONFIG = """\
providers: {mock: {type: mock}}
routes: {chat: {targets: [{provider: mock}]}}
keys:
  team: {secret: "${TEAM_KEY}", limits: %s}
"""


def access_line(arrived: float, number: int, **fields: Any) -> str:
    """An access line as `LOG_FORMAT=json` writes it: request `number` arrived at START + `arrived`
    and took 0.5 s, 30 prompt and 10 completion tokens."""
    ended = datetime.fromtimestamp(START + arrived + 0.5, UTC)
    entry = {
        "time": ended.isoformat(timespec="milliseconds")[:-6] + "Z",
        "level": "INFO",
        "logger": "gateway.access_log",
        "message": "complete ...",
        "request_id": f"req_{number}",
        "kind": "complete",
        "api": "chat",
        "model": "chat",
        "route": "chat",
        "provider": "mock",
        "upstream_model": "chat",
        "status": 200,
        "attempts": 1,
        "retries": 0,
        "failovers": 0,
        "duration_ms": 500.0,
        "prompt_tokens": 30,
        "completion_tokens": 10,
        "key": "team",
        "error": None,
        "cost": None,
        "currency": None,
        "cost_estimated": False,
        **fields,
    }
    return json.dumps(entry)


def replay(tmp_path: Path, limits: str, lines: list[str]) -> tuple[int, dict[str, Any]]:
    config = tmp_path / "routes.yaml"
    config.write_text(CONFIG % limits, encoding="utf-8")
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = io.StringIO()
    status = run_replay(str(config), str(log), fmt="json", out=out, environ={})
    report: dict[str, Any] = json.loads(out.getvalue())
    return status, report


def test_a_tokens_per_minute_limit_refuses_once_the_spent_tokens_reach_it(tmp_path: Path) -> None:
    # One request a second, 40 tokens each, spent when it ends: 0, 40 and 80 are below 100, then 120 is not.
    lines = [access_line(second, second) for second in range(10)]
    status, report = replay(tmp_path, "{tokens_per_minute: 100}", lines)
    assert status == 1
    assert [entry["request_id"] for entry in report["changed_requests"]] == [f"req_{n}" for n in range(3, 10)]
    assert {json.dumps(entry["changes"]) for entry in report["changed_requests"]} == {
        json.dumps({"limit": {"old": "admitted", "new": "limited (tokens_per_minute)"}})
    }


def test_the_minute_passes_and_the_tokens_are_allowed_again(tmp_path: Path) -> None:
    lines = [access_line(second, second) for second in (0, 1, 2, 3, 70, 71)]
    _, report = replay(tmp_path, "{tokens_per_minute: 100}", lines)
    assert [entry["request_id"] for entry in report["changed_requests"]] == ["req_3"]


def test_a_shadow_limit_changes_nothing(tmp_path: Path) -> None:
    lines = [access_line(second, second) for second in range(10)]
    status, report = replay(tmp_path, "{mode: shadow, tokens_per_minute: 100, requests_per_minute: 2}", lines)
    assert (status, report["changed"]) == (0, 0)


def test_requests_logged_as_limited_that_the_candidate_admits(tmp_path: Path) -> None:
    limited: dict[str, Any] = {"status": 429, "provider": None, "error": "rate_limit_exceeded"}
    limited |= {"prompt_tokens": None, "completion_tokens": None, "attempts": 0}
    lines = [access_line(0, 0), access_line(1, 1, **limited)]
    _, report = replay(tmp_path, "{requests_per_minute: 10}", lines)
    assert report["changed_requests"] == [
        {
            "request_id": "req_1",
            "time": "2026-01-05T09:00:01.500Z",
            "model": "chat",
            "key": "team",
            "api": "chat",
            "changes": {"limit": {"old": "limited", "new": "admitted"}},
        }
    ]


def test_only_access_lines_with_a_model_are_read() -> None:
    counts = ReadCounts()
    line = access_line
    lines = [
        line(0, 0),
        "2026-01-05T09:00:00.000000000Z stdout F " + line(1, 1),  # a container runtime's prefix
        '{"time": "2026-01-05T09:00:02Z", "logger": "uvicorn.error", "message": "Invalid HTTP request"}',
        "2026-01-05 09:00:02,000 INFO gateway.access_log req_x: complete model=chat (a text-format line)",
        '["a", "list"]',
        '{"logger": "gateway.access_log", "status": 200, ',  # cut short
        line(3, 3, model=""),  # refused before the body was read (401)
        line(4, 4, api="realtime"),  # an API this gateway does not know
        "",
    ]
    requests = list(read_access_log(lines, counts))
    assert [request.request_id for request in requests] == ["req_0", "req_1"]
    assert (counts.lines, counts.requests, counts.not_access_lines, counts.not_judged) == (9, 2, 5, 2)
    assert requests[1].arrived == START + 1 and requests[1].ended == START + 1.5


def test_cached_tokens_in_the_log_are_priced_as_cached_in_the_replay(tmp_path: Path) -> None:
    """The access line names the cached part of prompt_tokens; replay prices it at `cached_input`, as the
    gateway priced the request, not at the input price (older lines without it read as uncached)."""
    priced = (
        "prices:\n  currency: USD\n  models:\n"
        "    - {provider: mock, model: chat, input: 1.0, cached_input: 0.1, output: 2.0}\n"
    )
    [cached, plain] = read_access_log(
        [access_line(0, 0, cached_tokens=20, cache_write_tokens=0), access_line(1, 1)], ReadCounts()
    )
    assert cached.usage == {
        "prompt_tokens": 30,
        "completion_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 20, "cache_creation_tokens": 0},
    }
    assert plain.usage == {"prompt_tokens": 30, "completion_tokens": 10}
    config = tmp_path / "routes.yaml"
    config.write_text(CONFIG % "{}" + priced, encoding="utf-8")
    log = tmp_path / "access.log"
    log.write_text(access_line(0, 0, cached_tokens=20) + "\n" + access_line(1, 1) + "\n", encoding="utf-8")
    out = io.StringIO()
    assert run_replay(str(config), str(log), fmt="json", out=out, environ={}) == 1
    report = json.loads(out.getvalue())["changed_requests"]
    costs = {change["request_id"]: change["changes"]["cost"] for change in report}
    # 10 fresh at 1.0 + 20 cached at 0.1 + 10 out at 2.0 per million, against 30 at 1.0 + 10 at 2.0.
    assert costs == {
        "req_0": {"old": "unpriced", "new": "0.000032"},
        "req_1": {"old": "unpriced", "new": "0.000050"},
    }
