"""Cost per request over real sockets: the gateway in front of the provider simulator (OpenAI chat and
Anthropic Messages), priced by a `prices:` table. Each test checks the exact cost where it shows: the
`x-gateway-cost` header, the access log line, `/stats` and `gateway_cost_total` on `/metrics`.

The simulator's usage is deterministic (one prompt token per word, one completion token per piece), and
the clients read it from the answers, so every expected cost below is computed from what the upstream
reported, at the prices written here.
"""

from __future__ import annotations

import logging
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
from tests.support.cl100k_oracle import oracle_count
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway, write_config
from tests.support.resilience_support import dead_url
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)

TEAM_KEY = "sk-gw-cost-team"
ADMIN_KEY = "sk-gw-cost-admin"
UPSTREAM_ANTHROPIC_KEY = "sk-ant-sim"
SIM_KEY = "${SIM_KEY:-sim-key}"
HELLO = [{"role": "user", "content": "Hello there friend"}]  # 3 prompt tokens at the simulator
# Per million tokens.
SIM_INPUT, SIM_OUTPUT = Decimal("2"), Decimal("8")
CLAUDE_INPUT, CLAUDE_OUTPUT = Decimal("3"), Decimal("15")


def routes_yaml(chat_url: str, messages_url: str, dead: str) -> str:
    return f"""\
providers:
  sim: {{type: openai, base_url: {chat_url}, api_key: "{SIM_KEY}", health_check: {{enabled: false}}}}
  dead: {{type: openai, base_url: {dead}, api_key: "{SIM_KEY}", health_check: {{enabled: false}}}}
  claude:
    type: anthropic
    base_url: {messages_url}
    api_key: ${{SIM_ANTHROPIC_KEY:-{UPSTREAM_ANTHROPIC_KEY}}}
    health_check: {{enabled: false}}
routes:
  sim-model:
    targets: [{{provider: sim}}]
  failover:
    targets: [{{provider: dead, model: sim-model}}, {{provider: sim, model: sim-model}}]
  claude-sim:
    targets: [{{provider: claude}}]
  unpriced:
    targets: [{{provider: sim, model: not-in-the-table}}]
keys:
  team: {{secret: {hash_secret(TEAM_KEY)}}}
  admin: {{secret: {hash_secret(ADMIN_KEY)}, role: admin}}
prices:
  currency: USD
  models:
    - {{provider: sim, model: "sim-*", input: {SIM_INPUT}, output: {SIM_OUTPUT}}}
    - {{provider: claude, model: claude-sim, input: {CLAUDE_INPUT}, output: {CLAUDE_OUTPUT}}}
    - {{provider: dead, model: "*", input: 1000, output: 1000}}
"""


def cost(prompt: int, completion: int, input_price: Decimal, output_price: Decimal) -> Decimal:
    return (prompt * input_price + completion * output_price) / 1_000_000


def shown(amount: Decimal) -> str:
    """How the gateway writes an amount: at least 6 decimals."""
    text = f"{amount:.9f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(6, '0')}"


@pytest.fixture
def anthropic_sim() -> Iterator[ProviderSimulator]:
    with ProviderSimulator(api_key=UPSTREAM_ANTHROPIC_KEY) as sim:
        sim.default = Behaviour(text="Hello from Claude", stamp=False)
        yield sim


@pytest.fixture
def gateway(
    simulator: ProviderSimulator, anthropic_sim: ProviderSimulator, tmp_path: Path
) -> Iterator[RunningGateway]:
    config = write_config(tmp_path, routes_yaml(simulator.base_url, anthropic_sim.root_url, dead_url()))
    with running_gateway(config) as running:
        yield running


@pytest.fixture
def access_lines(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="gateway.access_log"):
        yield caplog


async def access_line(caplog: pytest.LogCaptureFixture, request_id: str) -> logging.LogRecord:
    def lines() -> list[logging.LogRecord]:
        return [
            record
            for record in caplog.records
            if record.name == "gateway.access_log" and getattr(record, "request_id", None) == request_id
        ]

    await eventually(lambda: bool(lines()), message=f"the access line of {request_id}")
    return lines()[0]


async def stats_when(base_url: str, ready: Callable[[dict[str, Any]], bool], message: str) -> dict[str, Any]:
    """/stats once `ready` holds for it (usage is written to the store in the background)."""
    seen: list[dict[str, Any]] = []

    def check() -> bool:
        seen[:] = [stats(base_url)]
        return ready(seen[0])

    await eventually(check, message=message)
    return seen[0]


def stats(base_url: str) -> dict[str, Any]:
    response = httpx.get(
        f"{base_url}/stats", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=CLIENT_TIMEOUT
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def cost_metric(base_url: str, **labels: str) -> float:
    response = httpx.get(
        f"{base_url}/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=CLIENT_TIMEOUT
    )
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "gateway_cost_total" and sample.labels == labels:
                return float(sample.value)
    return 0.0


def openai_client(gateway: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.base_url}/v1", api_key=TEAM_KEY, max_retries=0)


async def test_chat_json_and_stream_cost_in_header_log_stats_and_metrics(
    gateway: RunningGateway, access_lines: pytest.LogCaptureFixture
) -> None:
    async with openai_client(gateway) as client:
        raw = await client.chat.completions.with_raw_response.create(model="sim-model", messages=HELLO)  # type: ignore[arg-type]
        completion = raw.parse()
        assert completion.usage is not None
        json_cost = cost(
            completion.usage.prompt_tokens, completion.usage.completion_tokens, SIM_INPUT, SIM_OUTPUT
        )
        assert json_cost == Decimal("0.000046")  # 3 prompt and 5 completion tokens
        assert raw.headers["x-gateway-cost"] == "0.000046 USD"

        stream = await client.chat.completions.create(
            model="sim-model",
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        usage = None
        async with stream:
            async for chunk in stream:
                usage = chunk.usage or usage
        assert usage is not None
        stream_cost = cost(usage.prompt_tokens, usage.completion_tokens, SIM_INPUT, SIM_OUTPUT)
        stream_id = stream.response.headers["x-request-id"]
        assert "x-gateway-cost" not in stream.response.headers  # the head went out before the usage

    line = await access_line(access_lines, raw.headers["x-request-id"])
    assert f"cost={shown(json_cost)} USD" in line.getMessage()
    assert "cost_estimated" not in line.getMessage()
    assert line.access["cost"] == shown(json_cost) and line.access["currency"] == "USD"  # type: ignore[attr-defined]
    assert line.access["cached_tokens"] == 0  # type: ignore[attr-defined]  # the simulator reports none
    streamed = await access_line(access_lines, stream_id)
    assert f"cost={shown(stream_cost)} USD" in streamed.getMessage()

    total = json_cost + stream_cost

    result = await stats_when(
        gateway.base_url, lambda r: r["totals"]["cost"] == shown(total), "both requests costed in /stats"
    )
    assert result["currency"] == "USD"
    assert result["by_key"]["team"]["cost"] == shown(total)
    assert result["by_route"]["sim-model"]["cost"] == shown(total)
    assert result["by_provider"]["sim"]["cost"] == shown(total)
    assert result["by_model"]["sim-model"]["cost"] == shown(total)
    assert result["by_key"]["team"]["cost_estimated_requests"] == 0
    metric = cost_metric(
        gateway.base_url, route="sim-model", provider="sim", model="sim-model", currency="USD"
    )
    assert metric == pytest.approx(float(total), rel=1e-12)


async def test_a_cut_stream_is_charged_by_its_estimate_and_marked(
    gateway: RunningGateway, simulator: ProviderSimulator, access_lines: pytest.LogCaptureFixture
) -> None:
    # Events: the role chunk, then three words; the connection drops before the usage chunk.
    simulator.enqueue(Behaviour(text="Counting tokens with a real tokenizer now", drop_after=4, stamp=False))
    received = []
    async with openai_client(gateway) as client:
        stream = await client.chat.completions.create(model="sim-model", messages=HELLO, stream=True)  # type: ignore[arg-type]
        with pytest.raises(openai.APIError):
            async with stream:
                async for chunk in stream:
                    received.extend(choice.delta.content or "" for choice in chunk.choices)
        request_id = stream.response.headers["x-request-id"]
    # cl100k, framed as OpenAI frames chat: 3 per message + role + text, 3 priming the reply.
    prompt = 3 + oracle_count("user") + oracle_count("Hello there friend") + 3
    completion = oracle_count("".join(received))
    assert "".join(received) == "Counting tokens with " and (prompt, completion) == (10, 5)
    estimate = cost(prompt, completion, SIM_INPUT, SIM_OUTPUT)
    line = await access_line(access_lines, request_id)
    assert f"prompt_tokens={prompt} completion_tokens={completion}" in line.getMessage()
    assert f"cost={shown(estimate)} USD cost_estimated=true" in line.getMessage()
    assert line.access["cost_estimated"] is True  # type: ignore[attr-defined]
    assert line.access["prompt_tokens"] == prompt and line.access["completion_tokens"] == completion  # type: ignore[attr-defined]

    result = await stats_when(
        gateway.base_url,
        lambda r: "team" in r["by_key"] and r["totals"]["requests"] == 1,
        "the cut stream in /stats",
    )
    assert result["by_key"]["team"]["cost_estimated_requests"] == 1
    assert result["by_key"]["team"]["cost"] == shown(estimate)
    assert result["by_key"]["team"]["prompt_tokens"] == prompt
    metric = cost_metric(
        gateway.base_url, route="sim-model", provider="sim", model="sim-model", currency="USD"
    )
    assert metric == pytest.approx(float(estimate), rel=1e-12)


async def test_failover_charges_only_the_target_that_answered(
    gateway: RunningGateway, access_lines: pytest.LogCaptureFixture
) -> None:
    async with openai_client(gateway) as client:
        raw = await client.chat.completions.with_raw_response.create(model="failover", messages=HELLO)  # type: ignore[arg-type]
        completion = raw.parse()
        stream = await client.chat.completions.create(model="failover", messages=HELLO, stream=True)  # type: ignore[arg-type]
        async with stream:
            async for _chunk in stream:
                pass
    assert raw.headers["x-gateway-attempts"] == "2" and raw.headers["x-gateway-provider"] == "sim"
    assert completion.usage is not None
    answered = cost(completion.usage.prompt_tokens, completion.usage.completion_tokens, SIM_INPUT, SIM_OUTPUT)
    assert raw.headers["x-gateway-cost"] == f"{shown(answered)} USD"
    assert stream.response.headers["x-gateway-provider"] == "sim"
    line = await access_line(access_lines, stream.response.headers["x-request-id"])
    assert "provider=sim" in line.getMessage()

    result = await stats_when(
        gateway.base_url,
        lambda r: r["by_route"].get("failover", {}).get("requests") == 2,
        "both failover requests in /stats",
    )
    assert result["by_route"]["failover"]["cost"] == shown(2 * answered)  # the stream has the same usage
    assert "dead" not in result["by_provider"]
    assert (
        cost_metric(gateway.base_url, route="failover", provider="dead", model="sim-model", currency="USD")
        == 0
    )


async def test_messages_native_is_priced_with_its_own_usage(
    gateway: RunningGateway, access_lines: pytest.LogCaptureFixture
) -> None:
    async with anthropic.AsyncAnthropic(
        base_url=gateway.base_url, api_key=TEAM_KEY, max_retries=0, timeout=30.0
    ) as client:
        raw = await client.messages.with_raw_response.create(
            model="claude-sim",
            max_tokens=64,
            messages=HELLO,  # type: ignore[arg-type]
        )
        message = await raw.parse()
        async with client.messages.stream(model="claude-sim", max_tokens=64, messages=HELLO) as stream:  # type: ignore[arg-type]
            final = await stream.get_final_message()
            stream_id = stream.response.headers["x-request-id"]
    json_cost = cost(message.usage.input_tokens, message.usage.output_tokens, CLAUDE_INPUT, CLAUDE_OUTPUT)
    assert json_cost > 0
    assert raw.headers["x-gateway-cost"] == f"{shown(json_cost)} USD"
    stream_cost = cost(final.usage.input_tokens, final.usage.output_tokens, CLAUDE_INPUT, CLAUDE_OUTPUT)
    line = await access_line(access_lines, stream_id)
    assert f"cost={shown(stream_cost)} USD" in line.getMessage()


async def test_responses_translated_to_chat_is_priced(gateway: RunningGateway) -> None:
    async with openai_client(gateway) as client:
        raw = await client.responses.with_raw_response.create(model="sim-model", input="Hello there friend")
        response = raw.parse()
    assert response.usage is not None
    expected = cost(response.usage.input_tokens, response.usage.output_tokens, SIM_INPUT, SIM_OUTPUT)
    assert expected > 0
    assert raw.headers["x-gateway-cost"] == f"{shown(expected)} USD"


async def test_a_model_without_a_price_is_not_costed(
    gateway: RunningGateway, access_lines: pytest.LogCaptureFixture
) -> None:
    async with openai_client(gateway) as client:
        raw = await client.chat.completions.with_raw_response.create(model="unpriced", messages=HELLO)  # type: ignore[arg-type]
    assert raw.status_code == 200
    assert "x-gateway-cost" not in raw.headers
    line = await access_line(access_lines, raw.headers["x-request-id"])
    assert "cost=" not in line.getMessage() and line.access["cost"] is None  # type: ignore[attr-defined]
