"""`gateway serve --workers 2`: every worker's config version and last reload in `/admin/config`
(`workers`, `converged`) and in the metrics, whichever worker answers; a fleet that has not converged is
visible (one worker held with SIGSTOP while the files change), converges when it catches up, and a worker
that exits drops out."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_metrics_e2e import Samples, parse
from tests.support.access_support import keyed_routes_yaml
from tests.support.harness import CLIENT_TIMEOUT, gateway_process, wait_until

pytestmark = pytest.mark.timeout(120)


def admin_config(base_url: str) -> dict[str, Any]:
    """On a new connection each time, so either worker may answer."""
    answer = httpx.get(f"{base_url}/admin/config", timeout=CLIENT_TIMEOUT)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def versions_by_pid(base_url: str) -> dict[int, str]:
    return {worker["pid"]: worker["version"] for worker in admin_config(base_url)["workers"]}


def scrape(base_url: str) -> Samples:
    answer = httpx.get(f"{base_url}/metrics", timeout=CLIENT_TIMEOUT)
    assert answer.status_code == 200
    return parse(answer.text)


def config_info(samples: Samples) -> dict[int, str]:
    """pid -> the version its `gateway_config_info` says is in use (value 1)."""
    found: dict[int, str] = {}
    for (name, labels), sample in samples.items():
        if name == "gateway_config_info" and sample == 1:
            found[int(dict(labels)["pid"])] = dict(labels)["version"]
    return found


def reload_times(samples: Samples) -> dict[int, float]:
    return {
        int(dict(labels)["pid"]): sample
        for (name, labels), sample in samples.items()
        if name == "gateway_config_last_reload_timestamp_seconds"
    }


def test_workers_show_their_versions_diverge_while_one_is_held_and_converge(
    write_routes: Callable[..., Path],
) -> None:
    config_dir = write_routes(keyed_routes_yaml(""))
    with gateway_process(config_dir, extra_args=["--workers", "2"]) as gateway:
        url = gateway.base_url
        wait_until(lambda: len(versions_by_pid(url)) == 2, 20, "both workers did not publish")
        status = admin_config(url)
        [old] = {worker["version"] for worker in status["workers"]}
        assert status["converged"] is True and status["version"] == old
        held, other = sorted(versions_by_pid(url))
        assert {held, other} <= {child for child in _children(gateway.process.pid)}
        started = scrape(url)
        assert config_info(started) == {held: old, other: old}
        assert set(reload_times(started)) == {held, other}

        # Held, it cannot see the change (nor accept connections) until SIGCONT; under 5 s, or uvicorn's
        # supervisor, whose health pings it no longer answers, replaces it.
        os.kill(held, signal.SIGSTOP)
        try:
            with_third = keyed_routes_yaml("").replace(
                "  other:", "  third:\n    targets: [{provider: mock}]\n  other:"
            )
            (config_dir / "routes.yaml").write_text(with_third, encoding="utf-8")
            wait_until(lambda: versions_by_pid(url)[other] != old, 10, "the running worker did not reload")
            diverged = admin_config(url)
            new = versions_by_pid(url)[other]
            assert diverged["converged"] is False
            assert {w["pid"]: w["version"] for w in diverged["workers"]} == {held: old, other: new}
            [running] = [w for w in diverged["workers"] if w["pid"] == other]
            assert running["reload_count"] == 1 and running["last_reload"]["outcome"] == "applied"
            samples = scrape(url)
            assert config_info(samples) == {held: old, other: new}
            assert reload_times(samples)[other] > reload_times(started)[other]
            assert reload_times(samples)[held] == reload_times(started)[held]
        finally:
            os.kill(held, signal.SIGCONT)
        wait_until(lambda: admin_config(url)["converged"], 10, "the held worker did not catch up")
        assert versions_by_pid(url) == {held: new, other: new}
        assert config_info(scrape(url)) == {held: new, other: new}

        os.kill(held, signal.SIGKILL)  # gone without its shutdown: its entry must go too
        wait_until(lambda: held not in versions_by_pid(url), 10, "a dead worker's entry stayed")
        assert held not in config_info(scrape(url))


def _children(pid: int) -> set[int]:
    """The pids of `pid`'s child processes (from /proc, Linux)."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found
