"""Budgets over real sockets: the gateway under uvicorn in front of the provider simulator, with httpx and
the official SDKs. 200 concurrent requests against a budget that fits exactly 50 (memory, SQLite, Redis,
two processes on one Redis); settled spend equals the sum of the real costs; shadow budgets; the 429 in
OpenAI's and Anthropic's shape; and the settle on every exit path.

Prices make "fits exactly 50" deterministic: input at 0, output at 1000 per million tokens (0.001 a
token), `max_tokens: 5`, and the simulator answers exactly 5 completion tokens: each request reserves
0.005 and costs 0.005, and the budget is 0.25. The prompt part of the reservation is tested on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.access.keys import hash_secret
from gateway.api.recording import most_prompt_tokens
from tests.e2e.test_completions_e2e import COMPLETION
from tests.e2e.test_quota_e2e import post_many
from tests.e2e.test_shadow_limits_e2e import store_settings
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, gateway_process, running_gateway
from tests.support.raw_upstream import Upstream, read_head
from tests.support.redis_server import RedisServer
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(120)

TEAM_KEY = "sk-gw-budget-team"
ADMIN_KEY = "sk-gw-budget-admin"
SIM_KEY = "${SIM_KEY:-sim-key}"
BODY: dict[str, Any] = {
    "model": "sim-model",
    "max_tokens": 5,
    "messages": [{"role": "user", "content": "hi"}],
}
FIVE_TOKENS = Decimal("0.005")  # 5 completion tokens at 1000 per million


def routes_yaml(sim: str, limits: str, *, settings: str = "", extra: str = "", prices: str = "") -> str:
    return f"""\
providers:
  sim: {{type: openai, base_url: {sim}, api_key: "{SIM_KEY}", health_check: {{enabled: false}},
        apis: {{chat: true, responses: true}}}}
{extra}
routes:
  sim-model:
    targets: [{{provider: sim}}]
keys:
  team: {{secret: {hash_secret(TEAM_KEY)}, limits: {limits}}}
  admin: {{secret: {hash_secret(ADMIN_KEY)}, role: admin}}
prices:
  currency: USD
  models:
    - {{provider: sim, model: "*", input: 0, output: 1000}}
{prices}
settings:
  stats_flush_interval: 0.05
{settings}"""


def indented(text: str) -> str:
    return "".join(f"  {line}\n" for line in text.splitlines())


def stats(base_url: str) -> dict[str, Any]:
    response = httpx.get(f"{base_url}/stats", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def day_budget(base_url: str) -> dict[str, Any]:
    budget: dict[str, Any] = stats(base_url)["budgets"]["team"]["budget_per_day"]
    return budget


def key_cost(base_url: str) -> Decimal:
    return Decimal(stats(base_url)["by_key"].get("team", {"cost": "0"})["cost"])


async def settled(base_url: str, spent: Decimal | None = None) -> dict[str, Any]:
    """The team's day budget once nothing is held (and, if given, `spent` is reached)."""
    seen: list[dict[str, Any]] = []

    def done() -> bool:
        seen[:] = [day_budget(base_url)]
        return Decimal(seen[0]["reserved"]) == 0 and (spent is None or Decimal(seen[0]["spent"]) == spent)

    await eventually(done, timeout=10, message=f"budget not settled: {seen}")
    return seen[0]


def would_block(base_url: str) -> dict[tuple[str, str], float]:
    response = httpx.get(f"{base_url}/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    return {
        (sample.labels["key"], sample.labels["limit"]): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "gateway_limit_would_block_total"
    }


@contextlib.contextmanager
def budget_gateway(write_routes: Callable[..., Path], text: str) -> Iterator[RunningGateway]:
    with running_gateway(write_routes(text)) as gateway:
        yield gateway


@pytest.mark.parametrize("store", ["memory", "sqlite", "redis"])
async def test_200_concurrent_requests_against_a_budget_that_fits_50(
    store: str,
    simulator: ProviderSimulator,
    write_routes: Callable[..., Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    with store_settings(store, tmp_path, request) as settings:
        text = routes_yaml(simulator.base_url, "{budget_per_day: 0.25}", settings=indented(settings))
        with budget_gateway(write_routes, text) as gateway:
            url = f"{gateway.base_url}/v1/chat/completions"
            responses = await post_many([url] * 200, TEAM_KEY, BODY)
            statuses = [response.status_code for response in responses]
            assert statuses.count(200) == 50 and statuses.count(429) == 150
            refused = [response for response in responses if response.status_code == 429]
            assert {response.json()["error"]["code"] for response in refused} == {"budget_exceeded"}
            budget = await settled(gateway.base_url, 50 * FIVE_TOKENS)
            assert Decimal(budget["remaining"]) == 0
            assert key_cost(gateway.base_url) == 50 * FIVE_TOKENS  # the sum of the real costs
    admitted = [response for response in responses if response.status_code == 200]
    # Every admitted request saw a different remainder: 0.245 left, 0.240, ... 0 (to the nano-unit).
    remaining = sorted(Decimal(r.headers["x-gateway-budget-remaining"].split()[0]) for r in admitted)
    assert remaining == [FIVE_TOKENS * index for index in range(50)]


async def test_two_gateway_processes_on_one_redis_admit_50_together(
    simulator: ProviderSimulator, write_routes: Callable[..., Path], redis_server: RedisServer, tmp_path: Path
) -> None:
    with store_settings("redis", tmp_path, _Fixtures(redis_server)) as settings:  # type: ignore[arg-type]
        text = routes_yaml(simulator.base_url, "{budget_per_day: 0.25}", settings=indented(settings))
        config_dir = write_routes(text)
        with gateway_process(config_dir) as one, gateway_process(config_dir) as two:
            urls = [f"{(one, two)[index % 2].base_url}/v1/chat/completions" for index in range(200)]
            responses = await post_many(urls, TEAM_KEY, BODY)
            statuses = [response.status_code for response in responses]
            assert statuses.count(200) == 50 and statuses.count(429) == 150
            # Each process settles with its own flush; the shared budget ends at the exact sum.
            await settled(two.base_url, 50 * FIVE_TOKENS)
            await eventually(lambda: key_cost(one.base_url) == 50 * FIVE_TOKENS, timeout=10)


class _Fixtures:
    """Enough of a FixtureRequest for `store_settings("redis", ...)`: it asks for `redis_server`."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server

    def getfixturevalue(self, name: str) -> RedisServer:
        assert name == "redis_server"
        return self.server


async def test_a_shadow_budget_lets_200_through_and_counts_150(
    simulator: ProviderSimulator, write_routes: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="gateway.access")
    text = routes_yaml(simulator.base_url, "{mode: shadow, budget_per_day: 0.25}")
    with budget_gateway(write_routes, text) as gateway:
        responses = await post_many([f"{gateway.base_url}/v1/chat/completions"] * 200, TEAM_KEY, BODY)
        assert [response.status_code for response in responses] == [200] * 200
        assert would_block(gateway.base_url) == {("team", "budget_per_day"): 150.0}
        budget = await settled(gateway.base_url, 200 * FIVE_TOKENS)  # all of them ran: all are spent
        assert budget["mode"] == "shadow"
    assert caplog.text.count("key team would have been limited by budget_per_day (shadow)") == 1


async def test_over_budget_is_a_429_in_the_shape_of_each_api(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    text = routes_yaml(simulator.base_url, "{budget_per_day: 0.005}")  # one request
    with budget_gateway(write_routes, text) as gateway:
        async with openai.AsyncOpenAI(
            base_url=f"{gateway.base_url}/v1", api_key=TEAM_KEY, max_retries=0, timeout=CLIENT_TIMEOUT
        ) as client:
            done = await client.chat.completions.with_raw_response.create(
                model="sim-model", messages=BODY["messages"], max_tokens=5
            )
            assert done.headers["x-gateway-budget-remaining"] == "0.000000 USD"
            with pytest.raises(openai.RateLimitError) as refused:
                await client.chat.completions.create(
                    model="sim-model", messages=BODY["messages"], max_tokens=5
                )
        error = refused.value
        assert error.code == "budget_exceeded"
        assert error.type == "insufficient_quota"
        assert "key 'team'" in error.message and "budget_per_day" in error.message
        assert "T00:00:00Z" in error.message  # when it resets: the next UTC midnight
        assert int(error.response.headers["retry-after"]) >= 1
        assert int(error.response.headers["retry-after-ms"]) >= 1
        assert error.response.headers["x-gateway-budget-remaining"] == "0.000000 USD"
        async with anthropic.AsyncAnthropic(
            base_url=gateway.base_url, api_key=TEAM_KEY, max_retries=0, timeout=10
        ) as claude:
            with pytest.raises(anthropic.RateLimitError) as over:
                await claude.messages.create(model="sim-model", max_tokens=5, messages=BODY["messages"])
        body = over.value.response.json()
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert "Budget exceeded for key 'team'" in body["error"]["message"]
        assert over.value.response.headers["retry-after"]


async def test_the_reservation_prices_the_prompt_at_the_dearest_target(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    """Input priced this time: the hold is the prompt bound at the dearer target's input price plus
    max_tokens at its output price; the charge is the real usage at the price of the target that answered."""
    with ProviderSimulator() as backup:
        extra = (
            f'  backup: {{type: openai, base_url: {backup.base_url}, api_key: "{SIM_KEY}", '
            "health_check: {enabled: false}}\n"
        )
        prices = '    - {provider: backup, model: "*", input: 3000, output: 2000}\n'
        text = routes_yaml(simulator.base_url, "{budget_per_day: 10}", extra=extra, prices=prices)
        text = text.replace("targets: [{provider: sim}]", "targets: [{provider: sim}, {provider: backup}]")
        text = text.replace('model: "*", input: 0, output: 1000', 'model: "*", input: 1000, output: 1000')
        body = {**BODY, "messages": [{"role": "user", "content": "a prompt of several words " * 20}]}
        with budget_gateway(write_routes, text) as gateway:
            response = httpx.post(
                f"{gateway.base_url}/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {TEAM_KEY}"},
                timeout=CLIENT_TIMEOUT,
            )
            assert response.status_code == 200, response.text
            prompt = most_prompt_tokens(body)
            hold = (prompt * Decimal(3000) + 5 * Decimal(2000)) / 1_000_000  # backup is dearer
            remaining = Decimal(response.headers["x-gateway-budget-remaining"].split()[0])
            assert remaining == Decimal(10) - hold
            usage = response.json()["usage"]
            real = (
                usage["prompt_tokens"] * Decimal(1000) + usage["completion_tokens"] * Decimal(1000)
            ) / 1_000_000
            await settled(gateway.base_url, real)  # charged at sim's prices: sim answered
            assert real != hold


async def test_a_cut_stream_is_charged_by_its_estimate_and_marked(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    text = routes_yaml(simulator.base_url, "{budget_per_day: 1}")
    with budget_gateway(write_routes, text) as gateway:
        body = {**BODY, "max_tokens": 50, "stream": True, "x_sim": {"tokens": 20, "drop_after": 4}}
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT) as client:
            response = await client.post(
                f"{gateway.base_url}/v1/chat/completions",
                json=body,
                headers={"authorization": f"Bearer {TEAM_KEY}"},
            )
        assert response.status_code == 200 and '"error"' in response.text  # cut: a final error event
        budget = await settled(gateway.base_url)
        document = stats(gateway.base_url)
        team = document["by_key"]["team"]
        assert team["cost_estimated_requests"] == 1
        assert Decimal(budget["spent"]) == Decimal(team["cost"]) > 0
        assert Decimal(budget["spent"]) < Decimal("0.05")  # less than its hold of 50 output tokens


async def test_a_failover_charges_only_the_attempt_that_answered(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    with ProviderSimulator(default=Behaviour(status=500)) as broken:
        extra = (
            f'  broken: {{type: openai, base_url: {broken.base_url}, api_key: "{SIM_KEY}", '
            "health_check: {enabled: false}}\n"
        )
        prices = '    - {provider: broken, model: "*", input: 0, output: 900000}\n'
        text = routes_yaml(simulator.base_url, "{budget_per_day: 10}", extra=extra, prices=prices)
        text = text.replace(
            "targets: [{provider: sim}]\n",
            "targets: [{provider: broken}, {provider: sim}]\n  all-broken:\n"
            "    targets: [{provider: broken}]\n",
        )
        with budget_gateway(write_routes, text) as gateway:
            headers = {"authorization": f"Bearer {TEAM_KEY}"}
            url = f"{gateway.base_url}/v1/chat/completions"
            response = httpx.post(url, json=BODY, headers=headers, timeout=CLIENT_TIMEOUT)
            assert response.status_code == 200 and response.headers["x-gateway-attempts"] == "2"
            # Held at broken's price (4.5 for 5 tokens), charged at sim's: the one that answered.
            assert response.headers["x-gateway-budget-remaining"] == "5.500000 USD"
            await settled(gateway.base_url, FIVE_TOKENS)
            failed = httpx.post(
                url, json={**BODY, "model": "all-broken"}, headers=headers, timeout=CLIENT_TIMEOUT
            )
            assert failed.status_code >= 500
            await settled(gateway.base_url, FIVE_TOKENS)  # every target failed: nothing more is charged
            assert broken.requests  # the failing target was really tried


async def test_every_exit_path_settles_once(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    """Refused before dispatch, an upstream 4xx, a client that leaves mid-stream and one that leaves while
    waiting: each releases its hold; what produced tokens is charged, the rest is not."""
    text = routes_yaml(simulator.base_url, "{budget_per_day: 1}")
    text = text.replace("limits: {budget_per_day: 1}}", "limits: {budget_per_day: 1}, models: [sim-model]}")
    with budget_gateway(write_routes, text) as gateway:
        headers = {"authorization": f"Bearer {TEAM_KEY}"}
        url = f"{gateway.base_url}/v1/chat/completions"
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT, headers=headers) as client:
            assert (await client.post(url, json={**BODY, "model": "nope"})).status_code == 404
            assert (await client.post(url, json={**BODY, "messages": "x"})).status_code == 400
            upstream_refused = await client.post(url, json={**BODY, "x_sim": {"status": 400}})
            assert upstream_refused.status_code == 400
            await settled(gateway.base_url, Decimal(0))
            # The client leaves a stream after its first token (charged by the tokens it got).
            slow = {**BODY, "max_tokens": 50, "stream": True, "x_sim": {"tokens": 40, "token_delay": 0.05}}
            async with client.stream("POST", url, json=slow) as stream:
                async for line in stream.aiter_lines():
                    if "word0" in line:
                        break
            await eventually(
                lambda: stats(gateway.base_url)["by_key"]["team"]["cost_estimated_requests"] == 1
            )
            budget = await settled(gateway.base_url)
            assert Decimal(budget["spent"]) == Decimal(stats(gateway.base_url)["by_key"]["team"]["cost"]) > 0
            spent_so_far = Decimal(budget["spent"])
            # The client leaves before the answer: 499, its hold released, nothing charged.
            with pytest.raises(httpx.ReadTimeout):
                await client.post(url, json={**BODY, "x_sim": {"head_delay": 2}}, timeout=0.5)
            await eventually(
                lambda: any(r.outcome == "client_closed" for r in simulator.requests), timeout=10
            )
            await settled(gateway.base_url, spent_so_far)


async def test_every_api_is_charged_what_it_cost(
    simulator: ProviderSimulator, write_routes: Callable[..., Path]
) -> None:
    async def legacy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        body = httpx.Response(200, json=COMPLETION).content
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
        )
        writer.write(body)
        await writer.drain()

    async with Upstream(legacy) as upstream:
        extra = (
            f"  legacy: {{type: openai, base_url: {upstream.url.removesuffix('/chat/completions')}, "
            f'api_key: "{SIM_KEY}", apis: {{completions: true}}, health_check: {{enabled: false}}}}\n'
            "  mock: {type: mock}\n"
        )
        prices = (
            '    - {provider: legacy, model: "*", input: 7000, output: 11000}\n'
            '    - {provider: mock, model: "*", input: 13000}\n'
        )
        text = routes_yaml(simulator.base_url, "{budget_per_day: 1}", extra=extra, prices=prices)
        text = text.replace(
            "routes:\n",
            "routes:\n  davinci:\n    targets: [{provider: legacy}]\n"
            "  embed:\n    targets: [{provider: mock}]\n",
        )
        text = text.replace("input: 0, output: 1000", "input: 1000, output: 3000")
        with budget_gateway(write_routes, text) as gateway:
            async with openai.AsyncOpenAI(
                base_url=f"{gateway.base_url}/v1", api_key=TEAM_KEY, max_retries=0, timeout=CLIENT_TIMEOUT
            ) as client:
                messages = BODY["messages"]
                await client.chat.completions.create(model="sim-model", messages=messages, max_tokens=5)
                chunks = await client.chat.completions.create(
                    model="sim-model", messages=messages, max_tokens=5, stream=True
                )
                async for _ in chunks:
                    pass
                await client.responses.create(model="sim-model", input="hello", max_output_tokens=5)
                await client.completions.create(model="davinci", prompt="hello", max_tokens=5)
                await client.embeddings.create(model="embed", input="hello")
            async with anthropic.AsyncAnthropic(
                base_url=gateway.base_url, api_key=TEAM_KEY, max_retries=0, timeout=10
            ) as claude:
                await claude.messages.create(model="sim-model", max_tokens=5, messages=messages)
                async with claude.messages.stream(
                    model="sim-model", max_tokens=5, messages=messages
                ) as stream:
                    await stream.get_final_message()
            await eventually(lambda: stats(gateway.base_url)["totals"]["requests"] == 7, timeout=10)
            document = stats(gateway.base_url)
            assert sorted(document["by_model"]) == ["davinci", "embed", "sim-model"]
            assert all(Decimal(model["cost"]) > 0 for model in document["by_model"].values())
            await settled(gateway.base_url, Decimal(document["by_key"]["team"]["cost"]))
