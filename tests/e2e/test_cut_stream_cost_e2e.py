"""Streams cut before their usage, on the event APIs, over real sockets: charged by the cl100k count of the
prompt and of the text the client got (`oracle_count`: tiktoken's own encoding), at the configured
prices, marked `cost_estimated`; and `/stats` per UTC day. The gateway, simulators and prices are those of
`test_cost_e2e.py`.
"""

from __future__ import annotations

import time
from typing import Any

import anthropic
import openai
import pytest

from gateway.api.state import app_state
from gateway.translate import tokenizer as tokenizer_module
from gateway.translate.tokenizer import Tokenizer, TokenizerUnavailable
from tests.e2e import test_cost_e2e as cost_e2e
from tests.e2e.test_cost_e2e import (
    CLAUDE_INPUT,
    CLAUDE_OUTPUT,
    HELLO,
    SIM_INPUT,
    SIM_OUTPUT,
    TEAM_KEY,
    access_line,
    cost,
    openai_client,
    shown,
    stats_when,
)
from tests.support.cl100k_oracle import oracle_count
from tests.support.harness import RunningGateway
from tests.support.simulator import Behaviour, ProviderSimulator

pytestmark = pytest.mark.timeout(60)

gateway = cost_e2e.gateway
anthropic_sim = cost_e2e.anthropic_sim
access_lines = cost_e2e.access_lines

# "Hello there friend" from the user, framed as OpenAI frames chat (3 a message, 3 priming the reply).
HELLO_PROMPT = 3 + oracle_count("user") + oracle_count("Hello there friend") + 3


def anthropic_client(gateway: RunningGateway) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gateway.base_url, api_key=TEAM_KEY, max_retries=0, timeout=30.0)


async def cut_messages_stream(gateway: RunningGateway, model: str) -> tuple[str, str, Any]:
    """A Messages stream the upstream drops: the text the client got, the request id, message_start's
    usage."""
    received: list[str] = []
    start_usage = None
    async with anthropic_client(gateway) as client:
        raw = await client.messages.with_raw_response.create(
            model=model,
            max_tokens=64,
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
        )
        stream = await raw.parse()
        with pytest.raises(anthropic.APIError):
            async for event in stream:
                if event.type == "message_start":
                    start_usage = event.message.usage
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    received.append(event.delta.text)
    return "".join(received), raw.headers["x-request-id"], start_usage


async def test_a_cut_messages_stream_translated_to_chat_is_charged_by_its_tokens(
    gateway: RunningGateway, simulator: ProviderSimulator, access_lines: pytest.LogCaptureFixture
) -> None:
    # Chat upstream: the role chunk, then words; dropped before finish and usage.
    simulator.enqueue(Behaviour(text="Streams cut short are still charged", drop_after=5, stamp=False))
    text, request_id, _ = await cut_messages_stream(gateway, "sim-model")
    assert text == "Streams cut short are "
    completion = oracle_count(text)
    estimate = cost(HELLO_PROMPT, completion, SIM_INPUT, SIM_OUTPUT)
    line = await access_line(access_lines, request_id)
    assert "api=messages" in line.getMessage()
    assert f"prompt_tokens={HELLO_PROMPT} completion_tokens={completion}" in line.getMessage()
    assert f"cost={shown(estimate)} USD cost_estimated=true" in line.getMessage()
    result = await stats_when(
        gateway.base_url, lambda r: r["totals"]["requests"] == 1, "the cut Messages stream in /stats"
    )
    assert result["by_key"]["team"]["cost"] == shown(estimate)
    assert result["by_key"]["team"]["cost_estimated_requests"] == 1
    assert result["totals"]["completion_tokens"] == completion


async def test_a_cut_native_messages_stream_keeps_the_upstreams_prompt_count(
    gateway: RunningGateway, anthropic_sim: ProviderSimulator, access_lines: pytest.LogCaptureFixture
) -> None:
    # message_start (with its usage), ping, the text block's start, two deltas; then the drop.
    anthropic_sim.enqueue(Behaviour(text="Anthropic streams its usage twice", drop_after=5, stamp=False))
    text, request_id, start_usage = await cut_messages_stream(gateway, "claude-sim")
    assert start_usage is not None and text == "Anthropic streams "
    prompt = start_usage.input_tokens  # counted by the upstream, before the cut: used as it is
    completion = max(oracle_count(text), start_usage.output_tokens)
    estimate = cost(prompt, completion, CLAUDE_INPUT, CLAUDE_OUTPUT)
    line = await access_line(access_lines, request_id)
    assert f"prompt_tokens={prompt} completion_tokens={completion}" in line.getMessage()
    assert f"cost={shown(estimate)} USD cost_estimated=true" in line.getMessage()


async def test_a_cut_responses_stream_is_charged_by_its_tokens(
    gateway: RunningGateway, simulator: ProviderSimulator, access_lines: pytest.LogCaptureFixture
) -> None:
    simulator.enqueue(Behaviour(text="Responses are charged the same way", drop_after=4, stamp=False))
    received: list[str] = []
    async with openai_client(gateway) as client:
        raw = await client.responses.with_raw_response.create(
            model="sim-model", input="Hello there friend", stream=True
        )
        kinds = []
        async for event in raw.parse():
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                received.append(event.delta)
    assert kinds[-1] == "response.failed"  # how a Responses stream ends in failure
    text = "".join(received)
    assert text == "Responses are charged "
    completion = oracle_count(text)
    estimate = cost(HELLO_PROMPT, completion, SIM_INPUT, SIM_OUTPUT)
    line = await access_line(access_lines, raw.headers["x-request-id"])
    assert f"prompt_tokens={HELLO_PROMPT} completion_tokens={completion}" in line.getMessage()
    assert f"cost={shown(estimate)} USD cost_estimated=true" in line.getMessage()


async def test_stats_split_by_utc_day(gateway: RunningGateway, anthropic_sim: ProviderSimulator) -> None:
    before = time.strftime("%Y-%m-%d", time.gmtime())
    async with openai_client(gateway) as client:
        for _ in range(2):
            await client.chat.completions.create(model="sim-model", messages=HELLO)  # type: ignore[arg-type]
    async with anthropic_client(gateway) as claude:
        await claude.messages.create(model="claude-sim", max_tokens=64, messages=HELLO)  # type: ignore[arg-type]
    after = time.strftime("%Y-%m-%d", time.gmtime())
    result = await stats_when(
        gateway.base_url, lambda r: r["totals"]["requests"] == 3, "3 requests in /stats"
    )
    days = result["by_day"]
    assert set(days) <= {before, after} and days
    if before == after:  # not across midnight: one day holds everything
        [day] = days.values()
        assert {name: day[name] for name in ("requests", "prompt_tokens", "completion_tokens", "cost")} == {
            name: result["totals"][name]
            for name in ("requests", "prompt_tokens", "completion_tokens", "cost")
        }
        assert day["by_key"]["team"]["fingerprint"] == result["by_key"]["team"]["fingerprint"]
        assert (
            day["by_route"]["sim-model"]["requests"] == 2 and day["by_route"]["claude-sim"]["requests"] == 1
        )
        assert day["by_provider"]["claude"]["cost"] == result["by_provider"]["claude"]["cost"] != "0.000000"
        assert day["by_model"]["sim-model"]["cost"] == result["by_model"]["sim-model"]["cost"]
    # The rows over all days keep their shape: one per (key, model, route, provider).
    assert sorted((row["key"], row["model"]) for row in result["rows"]) == [
        ("team", "claude-sim"),
        ("team", "sim-model"),
    ]


async def test_the_tokenizer_is_loaded_by_the_first_priced_cut_stream_only(
    gateway: RunningGateway, simulator: ProviderSimulator, access_lines: pytest.LogCaptureFixture
) -> None:
    tokenizer = app_state(gateway.app).tokenizer
    assert not tokenizer.loaded  # not at startup
    for model in ("unpriced", "sim-model"):
        simulator.enqueue(Behaviour(text="one two three four five", drop_after=3, stamp=False))
        async with openai_client(gateway) as client:
            stream = await client.chat.completions.create(model=model, messages=HELLO, stream=True)  # type: ignore[arg-type]
            with pytest.raises(openai.APIError):
                async with stream:
                    async for _chunk in stream:
                        pass
        line = await access_line(access_lines, stream.response.headers["x-request-id"])
        if model == "unpriced":  # nothing to charge: no count, no load
            assert "cost=" not in line.getMessage() and "prompt_tokens=-" in line.getMessage()
            assert not tokenizer.loaded
    assert "cost_estimated=true" in line.getMessage() and tokenizer.loaded


async def test_without_a_tokenizer_a_cut_stream_is_charged_by_characters(
    gateway: RunningGateway,
    simulator: ProviderSimulator,
    access_lines: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing() -> Tokenizer:
        raise TokenizerUnavailable("the cl100k encoding file is not installed")

    monkeypatch.setattr(tokenizer_module, "load_cl100k", missing)
    # Events: the role chunk and three words, then the drop.
    simulator.enqueue(Behaviour(text="one two three four five", drop_after=4, stamp=False))
    async with openai_client(gateway) as client:
        stream = await client.chat.completions.create(model="sim-model", messages=HELLO, stream=True)  # type: ignore[arg-type]
        with pytest.raises(openai.APIError):
            async with stream:
                async for _chunk in stream:
                    pass
    line = await access_line(access_lines, stream.response.headers["x-request-id"])
    # "Hello there friend": 18 characters, four a token: 5; one token per event: 4.
    assert "prompt_tokens=5 completion_tokens=4" in line.getMessage()
    assert f"cost={shown(cost(5, 4, SIM_INPUT, SIM_OUTPUT))} USD cost_estimated=true" in line.getMessage()
    assert not app_state(gateway.app).tokenizer.loaded
