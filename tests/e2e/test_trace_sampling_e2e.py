"""Sampling across real sockets: with `sample_ratio: 0` nothing is recorded or exported, but every upstream
request still carries a `traceparent` (sampled flag off; the client's trace id when it sent one), and a
client's sampled traceparent is followed (parent-based) with the full span tree exported."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_tracing_e2e import ALIAS, receiver, routes, trace_of, traceparent_parts
from tests.support.harness import CLIENT_TIMEOUT, running_gateway
from tests.support.otlp_receiver import CLIENT, SERVER, OtlpReceiver
from tests.support.simulator import ProviderSimulator

pytestmark = pytest.mark.timeout(60)
__all__ = ["receiver"]  # the fixture, used by name

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CHAT = {"model": ALIAS, "messages": [{"role": "user", "content": "hi"}]}


async def test_ratio_zero_records_nothing_but_carries_the_trace_upstream(
    simulator: ProviderSimulator, receiver: OtlpReceiver, write_routes: Callable[..., Path]
) -> None:
    config = write_routes(
        routes(simulator, {"enabled": True, "endpoint": receiver.endpoint, "sample_ratio": 0})
    )
    with running_gateway(config) as gateway:
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=CLIENT_TIMEOUT) as client:
            root = await client.post("/v1/chat/completions", json=CHAT)
            unsampled = await client.post(
                "/v1/chat/completions",
                json={**CHAT, "stream": True},
                headers={"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-00", "tracestate": "vendor=7"},
            )
            sampled = await client.post(
                "/v1/chat/completions",
                json=CHAT,
                headers={"traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"},
            )
        assert (root.status_code, unsampled.status_code, sampled.status_code) == (200, 200, 200)
        spans = await trace_of(receiver, 2)
        await asyncio.sleep(0.3)  # a few export periods: nothing else arrives
    sent = [request.headers for request in simulator.chat_requests]
    root_trace, _, root_flags = traceparent_parts(sent[0]["traceparent"])
    assert root_flags == "00" and root_trace != TRACE_ID
    assert traceparent_parts(sent[1]["traceparent"])[::2] == (TRACE_ID, "00")
    assert sent[1]["tracestate"] == "vendor=7"
    assert traceparent_parts(sent[2]["traceparent"])[::2] == (TRACE_ID, "01")
    # Only the request whose client sampled it is recorded: its SERVER and CLIENT spans.
    assert sorted(span.kind for span in receiver.spans) == sorted([SERVER, CLIENT])
    assert {span.trace_id for span in spans} == {TRACE_ID}
