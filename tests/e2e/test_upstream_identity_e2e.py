"""The upstream sees the gateway, not the client: its `user-agent` names the gateway and its version
whatever the client's SDK sends, and the client's credentials never go on."""

from __future__ import annotations

from pathlib import Path

import openai

from gateway import __version__
from tests.support.harness import CLIENT_TIMEOUT, running_gateway, write_config
from tests.support.simulator import ProviderSimulator


def test_the_upstream_user_agent_names_the_gateway(tmp_path: Path) -> None:
    with ProviderSimulator(api_key="sim-key") as sim:
        routes = f"""\
providers:
  sim:
    type: openai
    base_url: {sim.base_url}
    api_key: ${{SIM_API_KEY:-sim-key}}
    health_check: {{enabled: false}}
routes:
  sim-model:
    targets: [{{provider: sim}}]
"""
        with (
            running_gateway(write_config(tmp_path, routes)) as gateway,
            openai.OpenAI(
                base_url=f"{gateway.base_url}/v1", api_key="client-key", timeout=CLIENT_TIMEOUT
            ) as client,
        ):
            client.chat.completions.create(model="sim-model", messages=[{"role": "user", "content": "hi"}])
            stream = client.chat.completions.create(
                model="sim-model", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            assert [chunk for chunk in stream]
            assert client.user_agent.startswith("OpenAI/Python")
    assert len(sim.requests) == 2
    for request in sim.requests:
        assert request.headers["user-agent"] == f"gateway/{__version__}"
        assert request.headers["authorization"] == "Bearer sim-key"
        assert not any(name.startswith("x-stainless") for name in request.headers)
