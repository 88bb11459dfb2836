"""`gateway replay --config NEW ACCESS_LOG [--baseline OLD] [--format text|json]`: which recorded
requests a candidate config would treat differently.

Reads a JSON access log (`LOG_FORMAT=json`; replay_log.py), judges every request under NEW
(replay_compare.py: route, first target, key and allowlist, limits re-simulated over the log's times,
cost from the logged usage at NEW's prices) and compares it with what the log says happened, or with
OLD judged the same way. Prints the counts per kind of change and each changed request. No request is
sent anywhere; keys are named, so their secrets are not needed (decision.load_offline).

Exit status: 0 nothing changes, 1 some request changes, 2 a config or the log cannot be read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from gateway.config.diagnostics import plural
from gateway.decision import ConfigJudge, load_offline
from gateway.replay_compare import CHANGE_KINDS, ChangedRequest, ConfigSide, replay
from gateway.replay_log import ReadCounts, read_access_log
from gateway.route_expectations import short_api

EXIT_UNCHANGED = 0
EXIT_CHANGED = 1
EXIT_ERROR = 2


def run_replay(
    config: str,
    access_log: str,
    baseline: str | None = None,
    fmt: str = "text",
    out: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    out = sys.stdout if out is None else out
    sides: list[ConfigSide] = []
    for label, path in (("candidate", config), ("baseline", baseline)):
        if path is None:
            continue
        result = load_offline([path], environ)
        if result.config is None:
            for diagnostic in result.errors:
                print(diagnostic, file=out)
            print(f"cannot replay: the {label} config in {path} is invalid", file=out)
            return EXIT_ERROR
        sides.append(ConfigSide(ConfigJudge(result.config)))
    counts = ReadCounts()
    try:
        with open(access_log, encoding="utf-8", errors="replace") as lines:
            changed = list(replay(read_access_log(lines, counts), *sides))
    except OSError as exc:
        print(f"cannot replay: cannot read {access_log}: {exc.strerror or exc}", file=out)
        return EXIT_ERROR
    report = _report(config, access_log, baseline, counts, changed)
    if fmt == "json":
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        out.write("\n".join(_text(report)) + "\n")
    return EXIT_CHANGED if changed else EXIT_UNCHANGED


def _report(
    config: str, access_log: str, baseline: str | None, counts: ReadCounts, changed: list[ChangedRequest]
) -> dict[str, Any]:
    kinds = {kind: sum(1 for change in changed if kind in change.changes) for kind in CHANGE_KINDS}
    return {
        "config": config,
        "baseline": baseline,
        "compared_with": "baseline" if baseline else "log",
        "access_log": access_log,
        "lines": counts.lines,
        "requests": counts.requests,
        "skipped_lines": counts.not_access_lines,
        "skipped_requests": counts.not_judged,
        "changed": len(changed),
        "changes_by_kind": kinds,
        "changed_requests": [
            {
                "request_id": change.request.request_id,
                "time": change.request.time,
                "model": change.request.model,
                "key": change.request.key,
                "api": short_api(change.request.api),
                "changes": {kind: {"old": old, "new": new} for kind, (old, new) in change.changes.items()},
            }
            for change in changed
        ],
    }


def _text(report: dict[str, Any]) -> list[str]:
    against = f"baseline {report['baseline']}" if report["baseline"] else "what the log says happened"
    lines = [
        f"replayed {plural(report['requests'], 'request')} of {report['access_log']} "
        f"under {report['config']}, compared with {against}",
        f"  skipped: {plural(report['skipped_lines'], 'line')} not access lines, "
        f"{plural(report['skipped_requests'], 'request')} without a model (refused before routing)",
        f"changed: {plural(report['changed'], 'request')}"
        + "".join(f", {kind} {count}" for kind, count in report["changes_by_kind"].items() if count),
    ]
    for entry in report["changed_requests"]:
        key = f" key={entry['key']}" if entry["key"] else ""
        changes = "; ".join(f"{kind}: {c['old']} -> {c['new']}" for kind, c in entry["changes"].items())
        who = f"{entry['time']} {entry['request_id']} model={entry['model']}{key} api={entry['api']}"
        lines.append(f"  {who}: {changes}")
    return lines
