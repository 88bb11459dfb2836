"""`GET /metrics` over real sockets: exact counter deltas after real requests through the gateway (success,
upstream error, failover, retry, stream, unknown model), the open-streams gauge while a stream is relayed,
provider health and breaker gauges, reload counters and the config version, admin protection, and the
switch that turns metrics off."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.access.keys import hash_secret
from gateway.api.app import create_app
from gateway.api.state import app_state
from tests.support.access_support import CHAT_BODY, bearer, keyed_routes_yaml
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway, wait_until
from tests.support.resilience_support import chat, dead_url, provider, write_gateway_config
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(60)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
FAST_RETRY = {"attempts": 2, "backoff": {"base": 0.01, "max": 0.01, "jitter": False}}


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: httpx.Client, headers: dict[str, str] | None = None) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


class Deltas:
    """What changed between two scrapes, series by series."""

    def __init__(self, before: Samples, after: Samples) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)


@pytest.fixture
def gateway(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> Iterator[tuple[RunningGateway, httpx.Client]]:
    """Providers `a` and `b` (both the simulator); `sim-model` -> a, then b; `single` -> a, no retry;
    `retrying` -> a with two attempts."""
    config_dir = write_gateway_config(
        write_routes,
        {"a": provider(simulator.base_url), "b": provider(simulator.base_url)},
        {
            "sim-model": {"targets": [{"provider": "a"}, {"provider": "b"}]},
            "single": {"targets": [{"provider": "a"}]},
            "retrying": {"targets": [{"provider": "a"}], "retry": FAST_RETRY},
        },
    )
    with (
        running_gateway(config_dir) as running,
        httpx.Client(base_url=running.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        yield running, client


def test_counters_move_by_exactly_what_real_requests_did(
    gateway: tuple[RunningGateway, httpx.Client], simulator: ProviderSimulator
) -> None:
    _, client = gateway
    before = scrape(client)

    ok = chat(client)  # a answers
    assert ok.status_code == 200
    usage = ok.json()["usage"]
    simulator.enqueue(Behaviour(status=500))
    assert chat(client, model="single").status_code == 500  # upstream error, passed through
    simulator.enqueue(Behaviour(status=503))
    failed_over = chat(client)  # a: 503, b answers
    assert (failed_over.status_code, failed_over.headers["x-gateway-provider"]) == (200, "b")
    simulator.enqueue(Behaviour(status=503))
    retried = chat(client, model="retrying")  # a: 503, a again
    assert (retried.status_code, retried.headers["x-gateway-attempts"]) == (200, "2")
    assert chat(client, model="no-such-model").status_code == 404

    d = Deltas(before, scrape(client))
    requests = "gateway_requests_total"
    assert d(requests, route="sim-model", provider="a", status="200", stream="false", api="chat") == 1
    assert d(requests, route="sim-model", provider="b", status="200", stream="false", api="chat") == 1
    assert d(requests, route="single", provider="a", status="500", stream="false", api="chat") == 1
    assert d(requests, route="retrying", provider="a", status="200", stream="false", api="chat") == 1
    assert d(requests, route="none", provider="none", status="404", stream="false", api="chat") == 1
    assert d("gateway_failovers_total", route="sim-model") == 1
    assert d("gateway_retries_total", route="retrying") == 1
    assert d("gateway_retries_total", route="sim-model") == 0
    assert d("gateway_request_attempts_count", route="sim-model") == 2
    assert d("gateway_request_attempts_bucket", route="sim-model", le="1.0") == 1  # the first request
    assert d("gateway_request_attempts_bucket", route="sim-model", le="2.0") == 2
    assert d("gateway_request_duration_seconds_count", route="sim-model", stream="false") == 2
    assert d("gateway_request_duration_seconds_count", route="none", stream="false") == 1
    # Tokens as the upstream reported them, for the two answers of sim-model (the same prompt twice).
    prompt = d("gateway_tokens_total", route="sim-model", provider="a", kind="prompt")
    assert prompt == usage["prompt_tokens"]
    assert (
        d("gateway_tokens_total", route="sim-model", provider="a", kind="completion")
        == (usage["completion_tokens"])
    )
    assert d("gateway_tokens_total", route="sim-model", provider="b", kind="prompt") == prompt
    assert d("gateway_open_streams") == 0


def test_a_stream_is_counted_when_it_ends_with_first_token_gaps_and_tokens(
    gateway: tuple[RunningGateway, httpx.Client], simulator: ProviderSimulator
) -> None:
    _, client = gateway
    before = scrape(client)
    simulator.enqueue(Behaviour(tokens=6, token_delay=0.01))
    body = {**CHAT_BODY, "model": "sim-model", "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    usage = json.loads(lines[-1].removeprefix("data: "))["usage"]
    labels = {"route": "sim-model", "provider": "a"}

    # The observers run in the stream's close path, right after the last byte: the scrape may be first.
    def counted() -> bool:
        return value(scrape(client), "gateway_streams_total", outcome="ok", **labels) == (
            value(before, "gateway_streams_total", outcome="ok", **labels) + 1
        )

    wait_until(counted, 5, "the stream was not counted")
    d = Deltas(before, scrape(client))
    assert d("gateway_requests_total", status="200", stream="true", api="chat", **labels) == 1
    assert d("gateway_time_to_first_token_seconds_count", **labels) == 1
    assert d("gateway_stream_chunk_interval_seconds_count", **labels) == 1
    assert d("gateway_stream_max_chunk_interval_seconds_count", **labels) == 1
    # Six tokens 10 ms apart: the mean gap is in the 5-25 ms buckets, never under 1 ms.
    assert d("gateway_stream_chunk_interval_seconds_bucket", le="0.001", **labels) == 0
    assert d("gateway_stream_max_chunk_interval_seconds_sum", **labels) >= 0.005
    assert d("gateway_tokens_total", kind="completion", **labels) == usage["completion_tokens"]
    assert d("gateway_request_duration_seconds_count", route="sim-model", stream="true") == 1
    assert value(scrape(client), "gateway_open_streams") == 0


def test_open_streams_counts_a_stream_while_it_is_relayed(
    gateway: tuple[RunningGateway, httpx.Client], simulator: ProviderSimulator
) -> None:
    _, client = gateway
    simulator.enqueue(Behaviour(tokens=3, token_delay=0.3))
    body = {**CHAT_BODY, "model": "sim-model", "stream": True}
    with (
        httpx.Client(base_url=str(client.base_url), timeout=CLIENT_TIMEOUT) as streaming,
        streaming.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data: {"))  # the stream is open
        assert value(scrape(client), "gateway_open_streams") == 1
        assert [line for line in lines if line.startswith("data: ")][-1] == "data: [DONE]"
    wait_until(lambda: value(scrape(client), "gateway_open_streams") == 0, 5, "open streams not back to 0")


def test_a_stream_that_fails_before_its_first_event_opens_no_stream(
    gateway: tuple[RunningGateway, httpx.Client], simulator: ProviderSimulator
) -> None:
    _, client = gateway
    before = scrape(client)
    simulator.enqueue(Behaviour(status=500))
    assert chat(client, model="single", stream=True).status_code == 500
    d = Deltas(before, scrape(client))
    assert (
        d("gateway_requests_total", route="single", provider="a", status="500", stream="true", api="chat")
        == 1
    )
    assert d("gateway_streams_total", route="single", provider="a", outcome="ok") == 0
    assert value(scrape(client), "gateway_open_streams") == 0


def test_provider_availability_health_and_breaker_state(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    fast_checks = {"interval": 0.05, "timeout": 1, "unhealthy_threshold": 2, "healthy_threshold": 1}
    config_dir = write_gateway_config(
        write_routes,
        {
            "flaky": provider(dead_url(), circuit_breaker={"failure_threshold": 1, "cooldown": 60}),
            "good": provider(simulator.base_url),
            "probed-down": provider(dead_url(), health_check=fast_checks),
            "keyless": provider(simulator.base_url, api_key="${GATEWAY_METRICS_TEST_UNSET}"),
        },
        {
            "sim-model": {"targets": [{"provider": "flaky"}, {"provider": "good"}]},
            "other": {"targets": [{"provider": "probed-down"}, {"provider": "keyless"}]},
        },
    )
    with (
        running_gateway(config_dir) as running,
        httpx.Client(base_url=running.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        breaker = "gateway_provider_breaker_state"
        got = scrape(client)
        assert value(got, breaker, provider="flaky", state="closed") == 1
        assert value(got, "gateway_provider_available", provider="keyless") == 0
        assert value(got, "gateway_provider_available", provider="good") == 1

        assert chat(client).headers["x-gateway-provider"] == "good"  # flaky refused the connection
        got = scrape(client)
        assert value(got, breaker, provider="flaky", state="open") == 1
        assert value(got, breaker, provider="flaky", state="closed") == 0
        assert value(got, breaker, provider="good", state="closed") == 1
        assert value(got, "gateway_provider_healthy", provider="good") == 1
        wait_until(
            lambda: value(scrape(client), "gateway_provider_healthy", provider="probed-down") == 0,
            5,
            "the failing health checks did not show",
        )


def test_reloads_are_counted_and_the_config_version_follows(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    config_dir = write_gateway_config(
        write_routes, {"a": provider(simulator.base_url)}, {"sim-model": {"targets": [{"provider": "a"}]}}
    )
    with (
        running_gateway(config_dir, reload=True) as running,
        httpx.Client(base_url=running.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        first = client.get("/health").json()["config_version"]
        got = scrape(client)
        assert value(got, "gateway_config_info", version=first) == 1
        assert value(got, "gateway_config_reloads_total", result="ok") == 0

        write_gateway_config(
            write_routes,
            {"a": provider(simulator.base_url)},
            {"sim-model": {"targets": [{"provider": "a"}]}, "second": {"targets": [{"provider": "a"}]}},
        )
        wait_until(
            lambda: value(scrape(client), "gateway_config_reloads_total", result="ok") == 1, 10, "no reload"
        )
        second = client.get("/health").json()["config_version"]
        got = scrape(client)
        assert second != first
        assert value(got, "gateway_config_info", version=second) == 1
        assert ("gateway_config_info", frozenset({("version", first)})) not in got

        (config_dir / "routes.yaml").write_text("routes: [this is not a mapping\n", encoding="utf-8")
        wait_until(
            lambda: value(scrape(client), "gateway_config_reloads_total", result="failed") == 1,
            10,
            "the rejected reload was not counted",
        )
        got = scrape(client)
        assert value(got, "gateway_config_reloads_total", result="ok") == 1
        assert value(got, "gateway_config_info", version=second) == 1  # the last good one is served


ADMIN_KEY = "sk-gw-admin-metrics-1"
TEAM_KEY = "sk-gw-team-metrics-1"


def test_metrics_need_an_admin_key_when_keys_are_enforced(
    write_routes: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_METRICS_TEAM_KEY", TEAM_KEY)
    keys = f"""\
    team:
      secret: ${{GW_METRICS_TEAM_KEY}}
      models: [mock]
    admin: {{secret: {hash_secret(ADMIN_KEY)}, role: admin}}
    """
    config_dir = write_routes(keyed_routes_yaml(keys))
    with (
        running_gateway(config_dir) as running,
        httpx.Client(base_url=running.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        assert (
            client.post("/v1/chat/completions", json=CHAT_BODY, headers=bearer(TEAM_KEY)).status_code == 200
        )
        assert client.get("/metrics").status_code == 401
        forbidden = client.get("/metrics", headers=bearer(TEAM_KEY))
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["type"]
        got = scrape(client, bearer(ADMIN_KEY))
        labels = {"route": "mock", "provider": "mock", "status": "200", "stream": "false", "api": "chat"}
        assert value(got, "gateway_requests_total", **labels) == 1
        # The 401 and 403 above were not chat requests; only the chat call counts.
        assert sum(v for (name, _), v in got.items() if name == "gateway_requests_total") == 1


def test_metrics_can_be_turned_off(
    write_routes: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_dir = write_routes(keyed_routes_yaml(""))
    monkeypatch.setenv("GATEWAY_METRICS", "0")
    app: Any = create_app(config_dir, reload=False)
    assert app_state(app).metrics is None and app_state(app).stream_observers == []
    with (
        running_gateway(app=app) as running,
        httpx.Client(base_url=running.base_url, timeout=CLIENT_TIMEOUT) as client,
    ):
        assert client.post("/v1/chat/completions", json=CHAT_BODY).status_code == 200
        stream = client.post("/v1/chat/completions", json={**CHAT_BODY, "stream": True})
        assert stream.text.rstrip().endswith("data: [DONE]")
        off = client.get("/metrics")
        assert off.status_code == 404
        assert "GATEWAY_METRICS" in off.json()["error"]["message"]
    assert app_state(create_app(config_dir, reload=False, metrics=True)).metrics is not None
