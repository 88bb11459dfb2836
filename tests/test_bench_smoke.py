"""The benchmark harness: its parts on their own, and `bench/run.py --smoke` end to end.

The smoke run starts the real mock upstream and the real gateway (both streamers) on loopback and pushes
a few seconds of non-streaming and streaming load through them; it needs no wrk, nginx or LiteLLM.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import report, wrk
from bench.load_client import StreamSink, chat_body, percentiles_ms
from bench.mock_streams import token_event
from bench.mock_upstream import PARAMS

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the harness reads /proc")


def test_token_event_carries_its_send_stamp_through_to_the_sink() -> None:
    chunked = token_event(0, 123456789)
    size, _, rest = chunked.partition(b"\r\n")
    event = rest[: int(size, 16)]
    delays: list[int] = []
    sink = StreamSink(delays)
    # Split inside the event: the sink must wait for the blank line that ends it.
    sink.feed(event[:40], received_ns=123456789 + 500)
    assert delays == []
    sink.feed(event[40:] + b"data: [DONE]\n\n", received_ns=123456789 + 700)
    assert delays == [700]
    assert sink.tokens == 1
    assert sink.done


def test_chat_body_names_tokens_and_delay_the_mock_reads() -> None:
    body = chat_body("bench", stream=True, tokens=7, delay_ms=2.5)
    found = PARAMS.search(body)
    assert found is not None
    assert (int(found.group(1)), float(found.group(2))) == (7, 2.5)
    assert json.loads(body)["stream"] is True


def test_percentiles_are_nearest_rank_in_milliseconds() -> None:
    values = [i * 1_000_000 for i in range(1, 101)]  # 1..100 ms
    result = percentiles_ms(values)
    assert result["p50"] == pytest.approx(51.0)
    assert result["p99"] == pytest.approx(99.0)
    assert result["max"] == 100.0
    assert percentiles_ms([]) == {}


def test_wrk_script_escapes_the_body_and_headers(tmp_path: Path) -> None:
    script = wrk.write_script(tmp_path / "post.lua", b'{"a":"x\\"y"}', ["authorization: Bearer k"])
    text = script.read_text()
    assert 'wrk.body = "{\\"a\\":\\"x\\\\\\"y\\"}"' in text
    assert 'wrk.headers["authorization"] = "Bearer k"' in text


def _run(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    labels = {"direct": "direct", "nginx": "nginx", "litellm": "LiteLLM", "gateway-asgi": "gw"}
    return {
        "meta": {},
        "scenarios": [{"key": "http_c50", "title": "c50", "kind": "http"}],
        "results": {
            name: {"label": labels[name], "scenarios": {"http_c50": r}} for name, r in results.items()
        },
    }


@pytest.mark.parametrize(
    ("ours", "expected_cells"),
    [
        (3000.0, ["0.10x", "0.50x", "30.00x"]),
        (60000.0, ["2.00x", "10.00x", "600x"]),
    ],
)
def test_scenario_table_gives_ratios_to_direct_nginx_and_litellm(
    ours: float, expected_cells: list[str]
) -> None:
    run = _run(
        {
            "direct": {"per_second": 30000.0, "latency_ms": {"p50": 0.1, "p99": 0.2}},
            "nginx": {"per_second": 6000.0, "latency_ms": {"p50": 0.2, "p99": 0.3}},
            "litellm": {"per_second": 100.0, "latency_ms": {"p50": 9.0, "p99": 20.0}},
            "gateway-asgi": {"per_second": ours, "latency_ms": {"p50": 0.4, "p99": 0.9}},
        }
    )
    rows = report.scenario_table("http_c50", run)
    gateway_row = next(row for row in rows if row.startswith("| gw |"))
    assert gateway_row.split(" | ")[-3:] == [expected_cells[0], expected_cells[1], expected_cells[2] + " |"]
    assert "+0.30" in gateway_row  # added p50 over direct


def test_readme_results_are_replaced_between_markers_only(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# Bench\n\nintro\n\n{report.BEGIN}\nold\n{report.END}\n\n## Streaming\n\nkept\n")
    report.write_readme(readme, "new table\n")
    text = readme.read_text()
    assert "old" not in text
    assert f"{report.BEGIN}\nnew table\n{report.END}" in text
    assert text.startswith("# Bench\n\nintro") and text.endswith("## Streaming\n\nkept\n")


def test_smoke_run_measures_direct_and_both_gateway_streamers(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    completed = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    run = json.loads(out.read_text())
    assert set(run["results"]) == {"direct", "gateway-asgi", "gateway-starlette"}
    for name, entry in run["results"].items():
        scenarios = entry["scenarios"]
        assert all("error" not in result for result in scenarios.values()), (name, scenarios)
        for key in ("http_c1", "http_c50"):
            assert scenarios[key]["completed"] > 0 and scenarios[key]["errors"] == 0, (name, key)
        for key in ("stream_c1", "stream_c50", "stream_200"):
            result = scenarios[key]
            assert result["completed"] > 0 and result["short_streams"] == 0, (name, key, result)
            assert result["chunks"] == result["completed"] * result["tokens"], (name, key)
            assert result["chunk_delay_ms"]["p50"] >= 0
        assert scenarios["open_1000"]["completed"] == 50, (name, scenarios["open_1000"])
        if name != "direct":
            assert 10 < scenarios["idle"]["rss_mb"] < 500
            assert scenarios["open_1000"]["rss_mb_peak"] >= scenarios["idle"]["rss_mb"] * 0.9
            assert scenarios["stream_c1"]["cpu"]["proxy_us_per_request"] > 0
    assert "Against the targets of the issue" in completed.stdout
