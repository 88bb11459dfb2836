"""A bug on the chat path, across real sockets: the served process answers 500 in OpenAI's error shape
(no traceback, no detail of the bug), counts it in `/metrics` with status 500, and writes its access line
with `error=internal_error`, for a complete answer and for a stream alike."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.observe.access_log import ACCESS_LOGGER
from gateway.resilience.dispatch import Dispatcher, RequestContext
from tests.support.harness import CLIENT_TIMEOUT, running_gateway, sim_routes_yaml
from tests.support.simulator import ProviderSimulator

pytestmark = pytest.mark.timeout(60)

BUG_DETAIL = "bug detail sk-not-for-clients"  # must reach neither the body nor the access line


class AccessLines(logging.Handler):
    """Collects the access log's records (the gateway runs in this process, on another thread)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def fields_of(self, request_id: str) -> list[dict[str, Any]]:
        fields = [getattr(record, "access", None) for record in self.records]
        return [field for field in fields if field is not None and field["request_id"] == request_id]


@pytest.fixture
def access_lines() -> Iterator[AccessLines]:
    logger = logging.getLogger(ACCESS_LOGGER)
    handler, level = AccessLines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def requests_with_status(client: httpx.Client, status: str, stream: str) -> float:
    text = client.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gateway_requests_total"
        and sample.labels.get("status") == status
        and sample.labels.get("stream") == stream
    )


async def raise_a_bug(self: Dispatcher, ctx: RequestContext) -> Any:
    raise RuntimeError(BUG_DETAIL)


@pytest.mark.parametrize(("stream", "method"), [(False, "complete"), (True, "open_stream")])
def test_a_bug_is_answered_500_counted_and_logged(
    simulator: ProviderSimulator,
    write_routes: Callable[..., Path],
    access_lines: AccessLines,
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
    method: str,
) -> None:
    monkeypatch.setattr(Dispatcher, method, raise_a_bug)  # the served process is this one
    config_dir = write_routes(sim_routes_yaml(simulator.base_url))
    label = "true" if stream else "false"
    with (
        running_gateway(config_dir) as gateway,
        httpx.Client(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        before = requests_with_status(client, "500", label)
        response = client.post(
            "/v1/chat/completions",
            json={"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "stream": stream},
            headers={"x-request-id": f"bug-{method}"},
        )
        after = requests_with_status(client, "500", label)

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {
            "message": "internal gateway error",
            "type": "server_error",
            "param": None,
            "code": "internal_error",
        }
    }
    assert BUG_DETAIL not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] == f"bug-{method}"
    assert response.headers["x-gateway-attempts"] == "0"
    assert after - before == 1
    [line] = access_lines.fields_of(f"bug-{method}")
    assert line["status"] == 500 and line["error"] == "internal_error"
    assert (
        line["model"] == "sim-model"
        and line["route"] == "sim-model"
        and line["kind"] == ("stream" if stream else "complete")
    )
    assert not any(BUG_DETAIL in record.getMessage() for record in access_lines.records)
    assert simulator.chat_requests == []  # the bug struck before any upstream request
