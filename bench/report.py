"""Render a benchmark run as Markdown and write it into bench/README.md between two markers.

Every table has one row per target and the ratio of its headline figure to direct, nginx and LiteLLM;
a closing table holds the issue's targets and whether each gateway streamer meets them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

BEGIN = "<!-- bench-results:begin -->"
END = "<!-- bench-results:end -->"
Getter = Callable[[dict[str, Any]], float | None]


def dig(result: dict[str, Any], *path: str) -> float | None:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) else None


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "/s":
        return f"{value:,.0f}"
    if unit == "MB":
        return f"{value:,.1f}"
    if unit == "%":
        return f"{value:.0f}%"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs == 0:
        return "—"
    value = ours / theirs
    return f"{value:,.0f}x" if value >= 100 else f"{value:.2f}x"


# Per scenario: the columns (header, getter, unit) and the headline column index used for ratios.
LAT = ("latency_ms",)
CHUNK = ("chunk_delay_ms",)
COLUMNS: dict[str, tuple[list[tuple[str, Getter, str]], int]] = {
    "idle": ([("RSS MB", lambda r: dig(r, "rss_mb"), "MB")], 0),
    "http_c1": (
        [
            ("p50 ms", lambda r: dig(r, *LAT, "p50"), "ms"),
            ("p99 ms", lambda r: dig(r, *LAT, "p99"), "ms"),
            ("req/s", lambda r: dig(r, "per_second"), "/s"),
        ],
        0,
    ),
    "http_c50": (
        [
            ("req/s", lambda r: dig(r, "per_second"), "/s"),
            ("p50 ms", lambda r: dig(r, *LAT, "p50"), "ms"),
            ("p99 ms", lambda r: dig(r, *LAT, "p99"), "ms"),
        ],
        0,
    ),
    "stream": (
        [
            ("streams/s", lambda r: dig(r, "per_second"), "/s"),
            ("TTFB p50 ms", lambda r: dig(r, "ttfb_ms", "p50"), "ms"),
            ("TTFB p99 ms", lambda r: dig(r, "ttfb_ms", "p99"), "ms"),
            ("chunk p50 ms", lambda r: dig(r, *CHUNK, "p50"), "ms"),
            ("chunk p99 ms", lambda r: dig(r, *CHUNK, "p99"), "ms"),
        ],
        0,
    ),
    "stream_200": (
        [
            ("chunk p50 ms", lambda r: dig(r, *CHUNK, "p50"), "ms"),
            ("chunk p99 ms", lambda r: dig(r, *CHUNK, "p99"), "ms"),
            ("chunk p99.9 ms", lambda r: dig(r, *CHUNK, "p999"), "ms"),
            ("chunks", lambda r: dig(r, "chunks"), "/s"),
        ],
        1,
    ),
    "open_1000": (
        [
            ("peak RSS MB", lambda r: dig(r, "rss_mb_peak"), "MB"),
            ("streams open at once", lambda r: dig(r, "open_peak"), "/s"),
            ("completed", lambda r: dig(r, "completed"), "/s"),
        ],
        0,
    ),
}
ADDED = {
    "http_c1": (LAT, "p50"),
    "http_c50": (LAT, "p50"),
    "stream": (CHUNK, "p99"),
    "stream_200": (CHUNK, "p99"),
}


def columns_for(key: str) -> tuple[list[tuple[str, Getter, str]], int]:
    return COLUMNS.get(key) or COLUMNS["stream"]


def scenario_table(key: str, run: dict[str, Any]) -> list[str]:
    columns, headline = columns_for(key)
    family = key if key in ADDED else ("stream" if key.startswith("stream_c") else None)
    head = ["target", *(c[0] for c in columns)]
    if family in ADDED:
        path, pct = ADDED[family]
        head.append(f"added {pct} over direct ms")
    head += [
        "proxy CPU",
        "proxy CPU us/req",
        "mock CPU",
        "errors",
        f"{columns[headline][0]} x direct",
        "x nginx",
        "x LiteLLM",
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    results = {name: entry["scenarios"].get(key) for name, entry in run["results"].items()}

    def headline_of(name: str) -> float | None:
        result = results.get(name)
        return columns[headline][1](result) if isinstance(result, dict) else None

    for name, entry in run["results"].items():
        result = results[name]
        if not isinstance(result, dict):
            continue
        if "error" in result:
            rows.append(f"| {entry['label']} | failed: {result['error'][:120]} |")
            continue
        cells = [entry["label"], *(fmt(getter(result), unit) for _, getter, unit in columns)]
        if family in ADDED:
            path, pct = ADDED[family]
            direct = results.get("direct")
            ours, floor = dig(result, *path, pct), dig(direct, *path, pct) if direct else None
            cells.append("—" if name == "direct" or ours is None or floor is None else f"{ours - floor:+.2f}")
        cpu = result.get("cpu", {})
        per_request = cpu.get("proxy_us_per_request")
        cells += [fmt(cpu.get("proxy_pct"), "%"), "—" if per_request is None else f"{per_request:,.0f}"]
        cells.append(fmt(cpu.get("mock_pct"), "%"))
        cells.append(str(int(result.get("errors", 0) + result.get("short_streams", 0))))
        value = headline_of(name)
        cells += [ratio(value, headline_of(peer)) for peer in ("direct", "nginx", "litellm")]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def added(run: dict[str, Any], name: str, key: str, path: tuple[str, ...], pct: str) -> float | None:
    results = run["results"]
    ours = dig(results.get(name, {}).get("scenarios", {}).get(key, {}), *path, pct)
    floor = dig(results.get("direct", {}).get("scenarios", {}).get(key, {}), *path, pct)
    return None if ours is None or floor is None else ours - floor


def value_of(run: dict[str, Any], name: str, key: str, *path: str) -> float | None:
    return dig(run["results"].get(name, {}).get("scenarios", {}).get(key, {}), *path)


def goals_table(run: dict[str, Any]) -> list[str]:
    """The issue's targets, each with what every target reached and whether the gateway meets it."""
    lite_rps = value_of(run, "litellm", "http_c50", "per_second")
    lite_sps = value_of(run, "litellm", "stream_c50", "per_second")
    nginx_c50 = added(run, "nginx", "stream_c50", CHUNK, "p99")
    nginx_200 = added(run, "nginx", "stream_200", CHUNK, "p99")
    goals: list[tuple[str, Callable[[str], float | None], Callable[[float], bool | None], str]] = [
        (
            "added p50 at c=1 ≤ 0.5 ms",
            lambda n: added(run, n, "http_c1", LAT, "p50"),
            lambda v: v <= 0.5,
            "ms",
        ),
        (
            "req/s at c=50 ≥ 3,100 and ≥ 25x LiteLLM",
            lambda n: value_of(run, n, "http_c50", "per_second"),
            lambda v: v >= max(3100.0, 25 * (lite_rps or 0)),
            "/s",
        ),
        (
            "streams/s at c=50 ≥ 25x LiteLLM",
            lambda n: value_of(run, n, "stream_c50", "per_second"),
            lambda v: None if lite_sps is None else v >= 25 * lite_sps,
            "/s",
        ),
        (
            "stream c=50: added chunk p99 within 2 ms of nginx",
            lambda n: added(run, n, "stream_c50", CHUNK, "p99"),
            lambda v: None if nginx_c50 is None else v <= nginx_c50 + 2,
            "ms",
        ),
        (
            "200 streams: added chunk p99 within 1 ms of nginx",
            lambda n: added(run, n, "stream_200", CHUNK, "p99"),
            lambda v: None if nginx_200 is None else v <= nginx_200 + 1,
            "ms",
        ),
        ("idle RSS ≤ 80 MB", lambda n: value_of(run, n, "idle", "rss_mb"), lambda v: v <= 80, "MB"),
        (
            "1,000 open streams < 150 MB",
            lambda n: value_of(run, n, "open_1000", "rss_mb_peak"),
            lambda v: v < 150,
            "MB",
        ),
    ]
    gateways = [name for name in run["results"] if name.startswith("gateway-")]
    present = [name for name in ("nginx", "litellm") if name in run["results"]] + gateways
    labels = [run["results"][name]["label"] for name in present]
    rows = ["| goal | " + " | ".join(labels) + " | met |", "|" + "---|" * (len(present) + 2)]
    for title, get, check, unit in goals:
        cells = [fmt(get(name), unit) for name in present]
        verdicts = []
        for name in present:
            value = get(name)
            if name in gateways and value is not None:
                verdict = check(value)
                verdicts.append(
                    f"{name.removeprefix('gateway-')}: " + {True: "yes", False: "NO", None: "?"}[verdict]
                )
        rows.append(f"| {title} | " + " | ".join(cells) + f" | {', '.join(verdicts) or '—'} |")
    return rows


def render(run: dict[str, Any]) -> str:
    meta = run["meta"]
    lines = [
        f"Run of {meta['date']} (`{meta['command']}`, profile `{meta['profile']}`"
        + (
            f", each load run {meta['repeat']} times, the least disturbed kept"
            if meta.get("repeat", 1) > 1
            else ""
        )
        + ").",
        "",
        f"- Machine: {meta['machine']}",
        f"- Pinning: {meta['pinning']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
        f"- Load average at start / end: {meta['loadavg_start']} / {meta['loadavg_end']}",
    ]
    for name, reason in meta.get("skipped", {}).items():
        lines.append(f"- Skipped {name}: {reason}")
    lines += ["", "### Against the targets of the issue", "", *goals_table(run)]
    for scenario in run["scenarios"]:
        lines += ["", f"### {scenario['title']}", "", *scenario_table(scenario["key"], run)]
    noise = [
        f"{entry['label']} {key}: core 0 {cpu.get('noise_core0_pct', 0):.0f}%, "
        f"core 1 {cpu.get('noise_core1_pct', 0):.0f}%"
        for entry in run["results"].values()
        for key, result in entry["scenarios"].items()
        if isinstance(result, dict)
        and (cpu := result.get("cpu"))
        and max(cpu.get("noise_core0_pct", 0), cpu.get("noise_core1_pct", 0)) >= 10
    ]
    lines += ["", "### Noise", ""]
    if noise:
        lines.append("CPU taken by other processes during a measurement (10% of a core or more):")
        lines += [f"- {item}" for item in noise]
    else:
        lines.append("No measurement saw other processes take 10% of either core.")
    return "\n".join(lines) + "\n"


def write_readme(readme: Path, body: str) -> None:
    """Replace what lies between the markers (the rest of the file, other sections included, stays)."""
    text = readme.read_text() if readme.exists() else f"# Benchmarks\n\n## Results\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n## Results\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{body}{END}{tail}")
