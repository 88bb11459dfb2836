"""`discover_models`: a glob route lists in `GET /v1/models` the names its provider's own `GET /models`
gives (those its glob matches and it answers), cached for the TTL; a failing provider costs only its names."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.support.harness import CLIENT_TIMEOUT, running_gateway, write_config
from tests.support.openai_schemas import validate_model_list
from tests.support.simulator import ProviderSimulator
from tests.support.simulator_behaviour import Behaviour


def routes_yaml(sim: ProviderSimulator, discover: str) -> str:
    return f"""\
providers:
  yi-upstream:
    type: openai
    base_url: {sim.base_url}
    api_key: ${{SIM_API_KEY:-sim-key}}
    health_check: {{enabled: false}}
  mock: {{type: mock}}
routes:
  yi:
    model: "yi-*"
    listed_models: [yi-large]
    discover_models: {discover}
    targets: [{{provider: yi-upstream}}]
  yi-vision-pinned:
    model: yi-vision
    targets: [{{provider: mock}}]
"""


def model_requests(sim: ProviderSimulator) -> int:
    return sum(1 for r in sim.requests if r.method == "GET" and r.path.endswith("/models"))


def test_discovered_names_are_listed_once_and_cached(tmp_path: Path) -> None:
    upstream_models = ("yi-lightning", "yi-large", "yi-vision", "gpt-4o")
    with (
        ProviderSimulator(models=upstream_models, api_key="sim-key") as sim,
        running_gateway(write_config(tmp_path, routes_yaml(sim, "{ttl: 60}"))) as gateway,
    ):
        client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", timeout=CLIENT_TIMEOUT)
        listing = client.models.list()
        validate_model_list(listing.model_dump())
        # Exact routes first, then listed, then discovered: yi-vision belongs to its exact route and
        # gpt-4o is not the glob's; yi-large is listed once.
        assert [model.id for model in listing.data] == ["yi-vision", "yi-large", "yi-lightning"]
        assert model_requests(sim) == 1
        sent = next(r for r in sim.requests if r.path.endswith("/models"))
        assert sent.headers["authorization"] == "Bearer sim-key"  # the provider's own key
        assert [m.id for m in client.models.list().data] == ["yi-vision", "yi-large", "yi-lightning"]
        assert model_requests(sim) == 1  # within the TTL the provider is not asked again
        # A discovered name is served like any name the glob matches.
        answer = client.chat.completions.create(
            model="yi-lightning", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.choices[0].message.content
        assert sim.chat_requests[-1].json["model"] == "yi-lightning"


def test_a_failing_provider_leaves_the_listed_names(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with ProviderSimulator(models=("yi-lightning",), api_key="sim-key") as sim:
        sim.models_default = Behaviour(status=500)
        with running_gateway(write_config(tmp_path, routes_yaml(sim, "true"))) as gateway:
            client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", timeout=CLIENT_TIMEOUT)
            assert [m.id for m in client.models.list().data] == ["yi-vision", "yi-large"]
            # The failure is remembered: a second listing does not ask the provider again at once.
            assert [m.id for m in client.models.list().data] == ["yi-vision", "yi-large"]
            assert model_requests(sim) == 1
            assert "provider yi-upstream: model list unavailable (status 500)" in caplog.text


def test_a_provider_that_does_not_answer_delays_a_listing_by_the_fetch_bound(tmp_path: Path) -> None:
    with ProviderSimulator(models=("yi-lightning",), api_key="sim-key") as sim:
        sim.models_default = Behaviour(head_delay=30.0)
        with running_gateway(write_config(tmp_path, routes_yaml(sim, "true"))) as gateway:
            client = openai.OpenAI(base_url=f"{gateway.base_url}/v1", api_key="x", timeout=CLIENT_TIMEOUT)
            assert [m.id for m in client.models.list().data] == ["yi-vision", "yi-large"]
