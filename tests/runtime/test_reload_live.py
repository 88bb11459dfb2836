"""Hot reload under traffic: the real gateway (uvicorn, watcher on) while route files are rewritten.

The acceptance test of hot reload: 50 versions, valid and broken interleaved, written atomically and in
place, while two clients send requests back to back (one JSON, one streaming). Every request must
succeed, every valid version must be served within 1 s of its save, every broken one must be reported
on /admin/config with its position and never served.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.harness import CLIENT_TIMEOUT, running_gateway
from tests.support.reload_support import (
    BROKEN_KINDS,
    ROUTES_YAML,
    SteadyClient,
    answer_text,
    chat_body,
    make_configmap,
    provider_yaml,
    write_atomically,
    write_in_place,
)

VERSIONS = 50
DEADLINE = 1.0  # seconds from save to served (or reported)
MARKER = re.compile(r"\b(v\d+|bad-\d+)\b")


def admin(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/admin/config")
    assert response.status_code == 200
    return dict(response.json())


def served_text(client: httpx.Client) -> str:
    response = client.post("/v1/chat/completions", json=chat_body())
    assert response.status_code == 200, response.text
    return answer_text(response)


def wait_for(predicate: Any, what: str, deadline: float = DEADLINE) -> float:
    """Poll `predicate` until true; return the seconds it took; fail past `deadline` (+ slack to report)."""
    started = time.monotonic()
    while not predicate():
        elapsed = time.monotonic() - started
        assert elapsed < deadline + 2.0, f"{what}: not within {deadline + 2.0}s"
        time.sleep(0.005)
    return time.monotonic() - started


def test_fifty_rewrites_under_traffic(tmp_path: Path) -> None:
    config_dir = tmp_path / "routes"
    config_dir.mkdir()
    (config_dir / "routes.yaml").write_text(ROUTES_YAML)
    providers = config_dir / "providers.yaml"
    providers.write_text(provider_yaml("v0", token_delay=0.01))
    kinds = list(BROKEN_KINDS)
    valid_latencies: list[float] = []
    report_latencies: list[float] = []
    valid_markers = {"v0"}
    broken_markers: set[str] = set()

    with (
        running_gateway(config_dir, reload=True) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as probe,
        SteadyClient(gateway.base_url) as plain,
        SteadyClient(gateway.base_url, stream=True) as streaming,
    ):
        assert admin(probe)["watching"] is True
        last_valid = "v0"
        for number in range(1, VERSIONS + 1):
            write = write_atomically if number % 4 in (1, 2) else write_in_place
            if number % 2:  # odd: a valid version
                marker = f"v{number}"
                valid_markers.add(marker)
                write(providers, provider_yaml(marker, token_delay=0.01))
                latency = wait_for(lambda m=marker: m in served_text(probe), f"version {marker}")
                valid_latencies.append(latency)
                last_valid = marker
                if number % 10 == 1:  # now and then a change of the other file: the alias moves
                    before = admin(probe)["reload_count"]
                    write(config_dir / "routes.yaml", ROUTES_YAML.replace("chat-alias", f"alias-{number}"))
                    wait_for(lambda b=before: admin(probe)["reload_count"] > b, f"alias of {number}")
                    response = probe.post("/v1/chat/completions", json=chat_body(f"alias-{number}"))
                    assert response.status_code == 200 and last_valid in answer_text(response)
            else:  # even: a broken version of one of four kinds
                kind = kinds[(number // 2) % len(kinds)]
                marker = f"bad-{number}"
                broken_markers.add(marker)
                rejected_before = admin(probe)["rejected_count"]
                write(providers, BROKEN_KINDS[kind](marker))
                latency = wait_for(
                    lambda b=rejected_before: admin(probe)["rejected_count"] > b,
                    f"report of {marker} ({kind})",
                )
                report_latencies.append(latency)
                status = admin(probe)
                assert status["serving_last_good"] is True
                error = status["last_error"]["errors"][0]
                assert error["path"] == str(providers), (kind, error)
                assert error["line"] and error["column"], (kind, error)
                assert error["location"] == f"{providers}:{error['line']}:{error['column']}"
                assert last_valid in served_text(probe)  # the last good version keeps serving
        final = admin(probe)

    answers = plain.answers + streaming.answers
    assert plain.failures == [] and streaming.failures == []
    assert len(plain.answers) > 100 and len(streaming.answers) > 50
    seen = {match for answer in answers for match in MARKER.findall(answer.text)}
    assert seen & broken_markers == set(), "a broken version was served"
    assert seen <= valid_markers
    for answer in streaming.answers:  # a stream is served from one version, start to end
        assert len(set(MARKER.findall(answer.text))) == 1, answer.text
    order = [int(MARKER.findall(answer.text)[0][1:]) for answer in plain.answers]
    assert order == sorted(order), "a sequential client saw an older version after a newer one"
    assert max(valid_latencies) < DEADLINE, valid_latencies
    assert max(report_latencies) < DEADLINE, report_latencies
    assert final["rejected_count"] >= VERSIONS // 2
    mean = sum(valid_latencies) / len(valid_latencies)
    print(
        f"\n{len(answers)} requests, 0 failed; valid versions served after "
        f"max {max(valid_latencies) * 1000:.0f} ms (mean {mean * 1000:.0f} ms); "
        f"broken ones reported after max {max(report_latencies) * 1000:.0f} ms; "
        f"{final['reload_count']} reloads applied, {final['rejected_count']} rejected"
    )


def test_configmap_symlink_swap(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    make_configmap(
        config_dir,
        "2024_01_01_00_00_00.1",
        {"routes.yaml": ROUTES_YAML, "providers.yaml": provider_yaml("v1")},
    )
    with (
        running_gateway(config_dir, reload=True) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as probe,
        SteadyClient(gateway.base_url) as steady,
    ):
        assert "v1" in served_text(probe)
        files = {"routes.yaml": ROUTES_YAML, "providers.yaml": provider_yaml("v2")}
        make_configmap(config_dir, "2024_01_01_00_01_00.2", files)
        assert wait_for(lambda: "v2" in served_text(probe), "ConfigMap v2") < DEADLINE
        assert admin(probe)["sources"] == [
            str(config_dir / "providers.yaml"),
            str(config_dir / "routes.yaml"),
        ]

        rejected = admin(probe)["rejected_count"]
        make_configmap(
            config_dir, "2024_01_01_00_02_00.3", {**files, "providers.yaml": BROKEN_KINDS["schema"]("bad-3")}
        )
        wait_for(lambda: admin(probe)["rejected_count"] > rejected, "ConfigMap bad-3 reported")
        error = admin(probe)["last_error"]["errors"][0]
        assert (error["path"], error["line"], error["column"]) == (str(config_dir / "providers.yaml"), 5, 20)
        assert "v2" in served_text(probe)

        make_configmap(config_dir, "2024_01_01_00_03_00.4", {**files, "providers.yaml": provider_yaml("v4")})
        assert wait_for(lambda: "v4" in served_text(probe), "ConfigMap v4") < DEADLINE
    assert steady.failures == [] and steady.answers
    assert not any("bad-3" in answer.text for answer in steady.answers)
