"""The sampling decision made before the SDK (`observe/trace_sampling.py`): the standard samplers'
semantics, the client's traceparent followed or not, and what an unsampled request sends upstream."""

from __future__ import annotations

import re

import pytest

from gateway.observe.trace_sampling import SamplingRule, UnsampledTrace, parse_traceparent
from gateway.observe.tracing import Tracing
from gateway.observe.tracing_spans import RequestTrace

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
SAMPLED = f"00-{TRACE_ID}-{PARENT}-01"
NOT_SAMPLED = f"00-{TRACE_ID}-{PARENT}-00"


@pytest.mark.parametrize(
    ("environ", "rule"),
    [
        ({}, SamplingRule(True, 1.0)),  # the SDK's default: parentbased_always_on
        ({"OTEL_TRACES_SAMPLER": "always_off"}, SamplingRule(False, 0.0)),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, SamplingRule(False, 1.0)),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, SamplingRule(True, 0.0)),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
            SamplingRule(False, 0.25),
        ),
        (
            {"OTEL_TRACES_SAMPLER": "ParentBased_TraceIdRatio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
            SamplingRule(True, 0.1),
        ),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"},
            SamplingRule(True, 1.0),
        ),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
            SamplingRule(True, 1.0),
        ),
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, None),  # a plugin: the SDK decides
    ],
)
def test_the_rule_of_the_environment(environ: dict[str, str], rule: SamplingRule | None) -> None:
    assert SamplingRule.of(None, environ) == rule


def test_the_configured_ratio_wins_and_is_parent_based() -> None:
    assert SamplingRule.of(0.3, {"OTEL_TRACES_SAMPLER": "always_off"}) == SamplingRule(True, 0.3)


def test_parent_based_follows_the_clients_flag_whatever_the_ratio() -> None:
    assert SamplingRule(True, 0.0).decide(SAMPLED) == (True, (TRACE_ID, PARENT, "01"))
    assert SamplingRule(True, 1.0).decide(NOT_SAMPLED) == (False, (TRACE_ID, PARENT, "00"))
    assert SamplingRule(True, 1.0).decide(f"00-{TRACE_ID}-00f067aa0ba902b7-03")[0] is True  # bit 0 only


def test_not_parent_based_draws_for_every_request() -> None:
    assert SamplingRule(False, 0.0).decide(SAMPLED)[0] is False
    assert SamplingRule(False, 1.0).decide(NOT_SAMPLED)[0] is True


def test_a_root_is_sampled_at_the_ratio() -> None:
    rule = SamplingRule(True, 0.25)
    sampled = sum(rule.decide(None)[0] for _ in range(20_000))
    assert 4_500 < sampled < 5_500  # 5,000 expected; 7 standard deviations either side


class NoSink:
    dropped = 0

    def add(self, request: tuple[object, ...]) -> None:
        raise AssertionError("nothing ends here")

    def shutdown(self) -> None:
        pass


@pytest.mark.parametrize(("ratio", "low", "high"), [(0.0, 0, 0), (0.25, 4_500, 5_500), (1.0, 20_000, 20_000)])
def test_the_gateway_samples_roots_at_the_ratio(ratio: float, low: int, high: int) -> None:
    """`Tracing.request` decides a root inline (not through `SamplingRule.decide`): the same rule."""
    tracing = Tracing(NoSink(), sampling=SamplingRule(True, ratio))
    traces = [tracing.request("POST", "/v1/chat/completions", [(b"host", b"x")]) for _ in range(20_000)]
    assert low <= sum(isinstance(trace, RequestTrace) for trace in traces) <= high
    assert len({trace.trace_id for trace in traces}) == 20_000  # a new trace each, sampled or not


def test_a_clients_parent_is_followed_whatever_the_ratio() -> None:
    headers = [(b"traceparent", SAMPLED.encode()), (b"tracestate", b"v=1")]
    trace = Tracing(NoSink(), sampling=SamplingRule(True, 0.0)).request("POST", "/v1/messages", headers)
    assert isinstance(trace, RequestTrace)
    assert (trace.trace_id, trace.tracestate) == (TRACE_ID, "v=1")
    unsampled = [(b"traceparent", NOT_SAMPLED.encode())]
    trace = Tracing(NoSink(), sampling=SamplingRule(True, 1.0)).request("POST", "/v1/messages", unsampled)
    assert isinstance(trace, UnsampledTrace) and trace.trace_id == TRACE_ID


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        f"ff-{TRACE_ID}-00f067aa0ba902b7-01",  # version ff is invalid
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero span id
        f"00-{TRACE_ID}-00f067aa0ba902b7-01-extra",  # version 00 has four fields
        f"00-{TRACE_ID.upper()}-00f067aa0ba902b7-01",  # hex is lower case
    ],
)
def test_an_invalid_traceparent_is_no_parent(value: str) -> None:
    assert parse_traceparent(value) is None
    assert SamplingRule(True, 0.0).decide(value) == (False, None)


def test_an_unsampled_request_continues_the_clients_trace_unrecorded() -> None:
    trace = UnsampledTrace((TRACE_ID, PARENT, "00"), "vendor=1")
    assert trace.recording is False
    headers = dict(trace.attempt(1, "a", "openai", "m", "http://x"))
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "00")
    assert re.fullmatch(r"[0-9a-f]{16}", span_id) and span_id != "0" * 16
    assert headers["tracestate"] == "vendor=1"


def test_an_unsampled_root_starts_a_new_trace_per_request() -> None:
    first = dict(UnsampledTrace(None, "ignored=1").attempt(1, "a", "openai", "m", "http://x"))
    second = dict(UnsampledTrace(None, None).attempt(1, "a", "openai", "m", "http://x"))
    assert "tracestate" not in first  # a tracestate without a valid parent is not continued
    assert parse_traceparent(first["traceparent"]) is not None
    assert first["traceparent"].split("-")[1] != second["traceparent"].split("-")[1]
