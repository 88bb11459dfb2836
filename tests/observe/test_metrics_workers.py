"""`gateway serve --workers 2`: whichever worker answers a scrape reports every worker's requests
(prometheus-client's multiprocess mode under a directory the CLI makes and removes), the config version
per worker, and its own provider state labelled with its pid."""

from __future__ import annotations

import glob
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_metrics_e2e import Samples, parse, value
from tests.support.access_support import CHAT_BODY, keyed_routes_yaml
from tests.support.harness import CLIENT_TIMEOUT, gateway_process, wait_until

pytestmark = pytest.mark.timeout(120)

REQUESTS = 12
STREAMS = 4


def scrape(base_url: str) -> Samples:
    """One scrape on a new connection, so the kernel may hand it to either worker."""
    response = httpx.get(f"{base_url}/metrics", timeout=CLIENT_TIMEOUT)
    assert response.status_code == 200
    return parse(response.text)


def pids(samples: Samples, name: str) -> set[str]:
    return {dict(labels)["pid"] for (metric, labels) in samples if metric == name}


def metrics_directories() -> set[str]:
    return set(glob.glob(str(Path(tempfile.gettempdir()) / "gateway-metrics-*")))


def test_every_scrape_sums_all_workers(write_routes: Callable[..., Path]) -> None:
    config_dir = write_routes(keyed_routes_yaml(""))
    before = metrics_directories()
    with gateway_process(config_dir, extra_args=["--workers", "2", "--no-reload"]) as gateway:
        url = gateway.base_url
        wait_until(lambda: len(pids(scrape(url), "gateway_config_info")) == 2, 20, "both workers started")
        created = metrics_directories() - before
        assert len(created) == 1, created  # the CLI's fresh directory
        for _ in range(REQUESTS):  # new connections: both workers serve some
            answer = httpx.post(f"{url}/v1/chat/completions", json=CHAT_BODY, timeout=CLIENT_TIMEOUT)
            assert answer.status_code == 200
        for _ in range(STREAMS):
            body = {**CHAT_BODY, "stream": True}
            streamed = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=CLIENT_TIMEOUT)
            assert streamed.text.rstrip().endswith("data: [DONE]")
        labels = {"route": "mock", "provider": "mock", "status": "200"}
        wait_until(
            lambda: (
                value(scrape(url), "gateway_requests_total", stream="true", api="chat", **labels) == STREAMS
            ),
            5,
            "the streams were not all counted",
        )
        answered_by: set[str] = set()
        for _ in range(60):
            got = scrape(url)
            assert value(got, "gateway_requests_total", stream="false", api="chat", **labels) == REQUESTS
            assert value(got, "gateway_requests_total", stream="true", api="chat", **labels) == STREAMS
            assert (
                value(got, "gateway_request_duration_seconds_count", route="mock", stream="false") == REQUESTS
            )
            assert value(got, "gateway_open_streams") == 0
            assert len(pids(got, "gateway_config_info")) == 2
            [worker] = pids(got, "gateway_provider_available")  # the answering worker's own view
            answered_by.add(worker)
            if len(answered_by) == 2:
                break
        assert answered_by == pids(got, "gateway_config_info"), "one worker answered every scrape"
    assert metrics_directories() - before == set(), "the metrics directory was left behind"
