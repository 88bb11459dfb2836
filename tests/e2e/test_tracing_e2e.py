"""OpenTelemetry traces against a real OTLP/HTTP receiver (protobuf decoded with `opentelemetry-proto`):
the span tree (a SERVER span per request, a CLIENT span per upstream attempt), the GenAI attributes, the
trace context carried to the upstream simulator in `traceparent`, a client's traceparent continued, no
content unless asked for, streams and JSON; off by default (nothing is sent, no traceparent upstream) and
on through the standard OTEL_* variables alone."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway import __version__ as gateway_version
from gateway.api.state import app_state
from gateway.observe.span_pipe import SpanPipe
from gateway.observe.tracing import Tracing
from tests.support.harness import CLIENT_TIMEOUT, RunningGateway, running_gateway
from tests.support.otlp_receiver import CLIENT, SERVER, STATUS_ERROR, OtlpReceiver, ReceivedSpan
from tests.support.resilience_support import provider
from tests.support.simulator import Behaviour, ProviderSimulator
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)

PROMPT = "tell me about the secret garden"
ALIAS = "alias"  # the model clients ask for; its target sends `sim-model` upstream


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """A running OTLP receiver; the gateway's batch processor exports every 50 ms (OTEL_BSP_*)."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(name, raising=False)
    with OtlpReceiver() as running:
        yield running


def routes(simulator: ProviderSimulator, tracing: dict[str, Any] | None) -> str:
    """`alias` -> a (target model sim-model); `failover` -> a, then b, no retries; both the simulator."""
    document: dict[str, Any] = {
        "providers": {"a": provider(simulator.base_url), "b": provider(simulator.base_url)},
        "routes": {
            ALIAS: {"targets": [{"provider": "a", "model": "sim-model"}]},
            "failover": {
                "targets": [{"provider": "a"}, {"provider": "b"}],
                "retry": {"attempts": 1},
            },
        },
    }
    if tracing is not None:
        document["settings"] = {"tracing": tracing}
    return json.dumps(document)


@pytest.fixture
def traced(
    simulator: ProviderSimulator, receiver: OtlpReceiver, write_routes: Callable[..., Path]
) -> Iterator[RunningGateway]:
    """The gateway with `settings.tracing: {enabled: true, endpoint: <receiver>}`."""
    config_dir = write_routes(routes(simulator, {"enabled": True, "endpoint": receiver.endpoint}))
    with running_gateway(config_dir) as gateway:
        yield gateway


def client_for(gateway: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{gateway.base_url}/v1", api_key="k", timeout=CLIENT_TIMEOUT, max_retries=0
    )


async def trace_of(receiver: OtlpReceiver, count: int) -> list[ReceivedSpan]:
    """The spans once `count` have arrived (the exporter sends in batches)."""
    await eventually(lambda: len(receiver.spans) >= count, message=f"{receiver.spans!r}")
    return receiver.spans


def one(spans: list[ReceivedSpan], kind: int) -> ReceivedSpan:
    found = [span for span in spans if span.kind == kind]
    assert len(found) == 1, found
    return found[0]


def traceparent_parts(value: str) -> tuple[str, str, str]:
    version, trace_id, span_id, flags = value.split("-")
    assert version == "00"
    return trace_id, span_id, flags


def no_content(spans: list[ReceivedSpan]) -> None:
    for span in spans:
        assert not any(name.startswith(("gen_ai.input", "gen_ai.output")) for name in span.attributes)
        assert all("secret garden" not in str(value) for value in span.attributes.values()), span


async def test_json_chat_makes_a_server_span_parent_of_its_attempt_span(
    traced: RunningGateway, receiver: OtlpReceiver, simulator: ProviderSimulator
) -> None:
    async with client_for(traced) as client:
        answer = await client.chat.completions.create(
            model=ALIAS, messages=[{"role": "user", "content": PROMPT}], max_tokens=50, temperature=0.5
        )
    spans = await trace_of(receiver, 2)
    server, attempt = one(spans, SERVER), one(spans, CLIENT)
    assert server.parent_span_id == ""
    assert attempt.trace_id == server.trace_id and attempt.parent_span_id == server.span_id
    assert server.name == "POST /v1/chat/completions"
    assert server.resource["service.name"] == "gateway"
    assert server.attributes["gen_ai.operation.name"] == "chat"
    assert server.attributes["gen_ai.request.model"] == ALIAS
    assert server.attributes["gen_ai.response.model"] == "sim-model"
    assert server.attributes["gen_ai.provider.name"] == "openai"
    assert server.attributes["gen_ai.request.max_tokens"] == 50
    assert server.attributes["gen_ai.request.temperature"] == 0.5
    assert server.attributes["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens  # type: ignore[union-attr]
    assert server.attributes["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens  # type: ignore[union-attr]
    assert server.attributes["gateway.route"] == ALIAS
    assert (
        server.attributes["gateway.config_version"]
        == app_state(traced.app).running().holder.current.config.version
    )
    assert server.attributes["gateway.attempts"] == 1
    assert server.attributes["http.response.status_code"] == 200
    assert "error.type" not in server.attributes and "gateway.key" not in server.attributes  # unset
    assert attempt.name == "chat sim-model"
    assert attempt.attributes["gen_ai.request.model"] == "sim-model"
    assert attempt.attributes["gen_ai.response.model"] == "sim-model"
    assert attempt.attributes["gen_ai.response.id"] == answer.id
    assert attempt.attributes["gen_ai.provider.name"] == "openai"
    assert attempt.attributes["gateway.provider"] == "a"
    assert attempt.attributes["gateway.attempt"] == 1
    assert attempt.attributes["gateway.attempt.outcome"] == "ok"
    assert attempt.attributes["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens  # type: ignore[union-attr]
    assert attempt.attributes["server.address"] == "127.0.0.1"
    assert "error.type" not in attempt.attributes and "http.response.status_code" not in attempt.attributes
    assert attempt.start_ns >= server.start_ns and attempt.end_ns <= server.end_ns
    # The upstream got the attempt's own span context.
    trace_id, span_id, flags = traceparent_parts(simulator.chat_requests[0].headers["traceparent"])
    assert (trace_id, span_id) == (server.trace_id, attempt.span_id)
    assert int(flags, 16) & 1  # sampled
    no_content(spans)


async def test_a_failover_shows_two_attempt_spans_each_sent_upstream(
    traced: RunningGateway, receiver: OtlpReceiver, simulator: ProviderSimulator
) -> None:
    simulator.enqueue(Behaviour(status=503))
    async with client_for(traced) as client:
        await client.chat.completions.create(model="failover", messages=[{"role": "user", "content": "hi"}])
    spans = await trace_of(receiver, 3)
    server = one(spans, SERVER)
    attempts = sorted((span for span in spans if span.kind == CLIENT), key=lambda span: span.start_ns)
    assert [span.attributes["gateway.attempt"] for span in attempts] == [1, 2]
    assert all(span.parent_span_id == server.span_id for span in attempts)
    first, second = attempts
    assert first.attributes["gateway.provider"] == "a"
    assert first.attributes["gateway.attempt.outcome"] == "error"
    assert first.attributes["error.type"] == "503"
    assert first.attributes["http.response.status_code"] == 503
    assert first.status_code == STATUS_ERROR
    assert second.attributes["gateway.provider"] == "b"
    assert second.attributes["gateway.attempt.outcome"] == "ok"
    assert second.status_code != STATUS_ERROR
    assert server.attributes["gateway.failovers"] == 1
    assert server.attributes["gateway.attempts"] == 2
    sent = [traceparent_parts(request.headers["traceparent"]) for request in simulator.chat_requests]
    assert [(trace_id, span_id) for trace_id, span_id, _ in sent] == [
        (server.trace_id, first.span_id),
        (server.trace_id, second.span_id),
    ]


async def test_a_client_traceparent_is_continued_and_errors_are_recorded(
    traced: RunningGateway, receiver: OtlpReceiver, simulator: ProviderSimulator
) -> None:
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    headers = {"traceparent": f"00-{trace_id}-{parent}-01"}
    async with httpx.AsyncClient(base_url=traced.base_url, timeout=CLIENT_TIMEOUT) as client:
        ok = await client.post(
            "/v1/chat/completions",
            json={"model": ALIAS, "messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
        )
        missing = await client.post(
            "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert (ok.status_code, missing.status_code) == (200, 404)
    spans = await trace_of(receiver, 3)
    continued = [span for span in spans if span.trace_id == trace_id]
    assert {span.kind for span in continued} == {SERVER, CLIENT}
    assert one(continued, SERVER).parent_span_id == parent
    assert traceparent_parts(simulator.chat_requests[0].headers["traceparent"])[0] == trace_id
    failed = one([span for span in spans if span.trace_id != trace_id], SERVER)
    assert failed.attributes["http.response.status_code"] == 404
    assert failed.attributes["error.type"] == "model_not_found"
    assert failed.attributes["gateway.attempts"] == 0


async def test_a_stream_span_ends_with_the_stream_and_has_time_to_first_chunk(
    traced: RunningGateway, receiver: OtlpReceiver, simulator: ProviderSimulator
) -> None:
    simulator.enqueue(Behaviour(tokens=5, token_delay=0.01))
    async with client_for(traced) as client:
        stream = await client.chat.completions.create(
            model=ALIAS,
            messages=[{"role": "user", "content": PROMPT}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None
    spans = await trace_of(receiver, 2)
    server, attempt = one(spans, SERVER), one(spans, CLIENT)
    assert attempt.parent_span_id == server.span_id
    assert server.attributes["gateway.stream"] is True
    assert server.attributes["gateway.stream.status"] == "ok"
    assert server.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert server.attributes["gen_ai.response.model"] == "sim-model"
    assert (
        0 < server.attributes["gen_ai.response.time_to_first_chunk"] < (server.end_ns - server.start_ns) / 1e9
    )
    assert attempt.attributes["gateway.attempt.outcome"] == "ok"
    assert attempt.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert attempt.attributes["gen_ai.response.time_to_first_chunk"] > 0
    # Five tokens 10 ms apart: the spans last until the stream's end, not its first event.
    assert attempt.end_ns - attempt.start_ns >= 40_000_000
    assert server.end_ns >= attempt.end_ns
    no_content(spans)


async def test_capture_content_puts_the_prompt_and_answer_on_the_request_span(
    simulator: ProviderSimulator, receiver: OtlpReceiver, write_routes: Callable[..., Path]
) -> None:
    tracing = {"enabled": True, "endpoint": f"http://127.0.0.1:{receiver.port}", "capture_content": True}
    with running_gateway(write_routes(routes(simulator, tracing))) as gateway:
        async with client_for(gateway) as client:
            answer = await client.chat.completions.create(
                model=ALIAS, messages=[{"role": "user", "content": PROMPT}]
            )
        server = one(await trace_of(receiver, 2), SERVER)
    assert json.loads(server.attributes["gen_ai.input.messages"]) == [{"role": "user", "content": PROMPT}]
    output = json.loads(server.attributes["gen_ai.output.messages"])
    assert output[0]["content"] == answer.choices[0].message.content


async def test_off_by_default_nothing_is_sent_and_no_traceparent_goes_upstream(
    simulator: ProviderSimulator, receiver: OtlpReceiver, write_routes: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)  # an endpoint is not "on"
    with running_gateway(write_routes(routes(simulator, None))) as gateway:
        assert app_state(gateway.app).tracing is None
        async with client_for(gateway) as client:
            await client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "hi"}])
            stream = await client.chat.completions.create(
                model=ALIAS, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            _ = [chunk async for chunk in stream]
    # The gateway has shut down (a flush would have sent everything by now).
    assert receiver.posts == 0
    assert [request.headers.get("traceparent") for request in simulator.chat_requests] == [None, None]


async def test_the_otel_environment_alone_turns_tracing_on(
    simulator: ProviderSimulator, receiver: OtlpReceiver, write_routes: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.port}")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "edge-gateway")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")  # only the shutdown's flush sends them
    with running_gateway(write_routes(routes(simulator, None))) as gateway:
        async with client_for(gateway) as client:
            await client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "hi"}])
    spans = receiver.spans
    assert {span.kind for span in spans} == {SERVER, CLIENT}
    assert {span.resource["service.name"] for span in spans} == {"edge-gateway"}


async def test_a_config_that_says_off_wins_over_the_environment(
    simulator: ProviderSimulator, receiver: OtlpReceiver, write_routes: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
    with running_gateway(write_routes(routes(simulator, {"enabled": False}))) as gateway:
        assert app_state(gateway.app).tracing is None
        async with client_for(gateway) as client:
            await client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "hi"}])
    assert receiver.posts == 0


async def test_a_clients_tracestate_and_remote_parent_reach_the_collector_and_the_upstream(
    traced: RunningGateway, receiver: OtlpReceiver, simulator: ProviderSimulator
) -> None:
    trace_id, parent = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    headers = {"traceparent": f"00-{trace_id}-{parent}-01", "tracestate": "vendor=7,other=x"}
    async with httpx.AsyncClient(base_url=traced.base_url, timeout=CLIENT_TIMEOUT) as client:
        answer = await client.post(
            "/v1/chat/completions",
            json={"model": ALIAS, "messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
        )
    assert answer.status_code == 200
    spans = await trace_of(receiver, 2)
    server, attempt = one(spans, SERVER), one(spans, CLIENT)
    assert server.trace_state == attempt.trace_state == "vendor=7,other=x"
    assert server.flags & 0x300 == 0x300  # the parent is known and remote (the client's)
    assert attempt.flags & 0x300 == 0x100  # known, local (the server span)
    assert server.scope == attempt.scope == ("gateway", gateway_version)
    sent = simulator.chat_requests[0].headers
    assert sent["tracestate"] == "vendor=7,other=x"
    assert traceparent_parts(sent["traceparent"]) == (trace_id, attempt.span_id, "01")


async def test_spans_are_exported_by_a_process_of_their_own_that_ends_with_the_gateway(
    simulator: ProviderSimulator, receiver: OtlpReceiver, write_routes: Callable[..., Path]
) -> None:
    config_dir = write_routes(routes(simulator, {"enabled": True, "endpoint": receiver.endpoint}))
    with running_gateway(config_dir) as gateway:
        tracing = app_state(gateway.app).tracing
        assert isinstance(tracing, Tracing) and isinstance(tracing.sink, SpanPipe)
        exporter = tracing.sink.exporter_pid
        assert exporter is not None and exporter != os.getpid()
        os.kill(exporter, 0)  # running
        async with client_for(gateway) as client:
            await client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "hi"}])
        await trace_of(receiver, 2)
    with pytest.raises(ProcessLookupError):  # it exited (and was reaped) with the gateway's shutdown
        os.kill(exporter, 0)


async def test_spans_dropped_while_the_exporter_is_down_show_in_metrics(
    simulator: ProviderSimulator, receiver: OtlpReceiver, write_routes: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    config_dir = write_routes(routes(simulator, {"enabled": True, "endpoint": receiver.endpoint}))
    with running_gateway(config_dir) as gateway:
        tracing = app_state(gateway.app).tracing
        assert isinstance(tracing, Tracing) and isinstance(tracing.sink, SpanPipe)
        sink = tracing.sink

        def dropped_metric() -> str:
            text = httpx.get(f"{gateway.base_url}/metrics", timeout=CLIENT_TIMEOUT).text
            return next(line for line in text.splitlines() if line.startswith("gateway_spans_dropped_total"))

        assert dropped_metric() == "gateway_spans_dropped_total 0.0"
        exporter = sink.exporter_pid
        assert exporter is not None
        os.kill(exporter, signal.SIGKILL)  # just started: it is not started again for RESTART_INTERVAL
        async with client_for(gateway) as client:
            await client.chat.completions.create(model=ALIAS, messages=[{"role": "user", "content": "hi"}])
        await eventually(lambda: sink.dropped == 2, message="the two spans were not dropped")
        assert dropped_metric() == "gateway_spans_dropped_total 2.0"
    assert receiver.spans == []
