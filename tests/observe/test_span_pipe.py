"""The gateway's side of span export (`observe/span_pipe.py`) with its real exporter process and a real
OTLP/HTTP receiver: batches by delay and by size, the shutdown's flush, a full queue dropping and counting,
and an exporter process that dies being started again."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from gateway.observe import span_pipe
from gateway.observe.span_pipe import SpanPipe
from gateway.observe.span_wire import ATTEMPT_ENDED, ATTEMPT_STARTED, REQUEST_ATTRIBUTES
from tests.support.otlp_receiver import SERVER, OtlpReceiver

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def wire_span(number: int, attempts: int = 0) -> tuple[object, ...]:
    """A traced request of one span (`attempts`: and one per attempt)."""
    now = time.time_ns()
    named = {"gateway.request_id": f"req_{number}", "gateway.attempts": attempts}
    values = tuple(named.get(name) for name in REQUEST_ATTRIBUTES)
    started, ended = (None,) * len(ATTEMPT_STARTED), (None,) * len(ATTEMPT_ENDED)
    tried = [
        [f"{1000 * number + place:016x}", now, *started, now + 1, *ended] for place in range(1, attempts + 1)
    ]
    return (f"{7:032x}", number, "", None, now, now + 1, values, None, tried)


def pipe_to(receiver: OtlpReceiver, **bsp: str) -> SpanPipe:
    environ = {f"OTEL_BSP_{name.upper()}": value for name, value in bsp.items()}
    return SpanPipe({"exporters": ["otlp"], "endpoint": receiver.endpoint, "service": "pipe-test"}, environ)


def wait_for(check: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_spans_arrive_after_the_delay_with_their_attributes(receiver: OtlpReceiver) -> None:
    pipe = pipe_to(receiver, schedule_delay="50")
    try:
        for number in range(1, 4):
            pipe.add(wire_span(number))
        wait_for(lambda: len(receiver.spans) == 3)
        spans = sorted(receiver.spans, key=lambda span: span.span_id)
        assert [span.attributes["gateway.request_id"] for span in spans] == ["req_1", "req_2", "req_3"]
        assert {span.kind for span in spans} == {SERVER}
        assert [span.name for span in spans] == ["None None"] * 3  # no method or path in these
        assert {span.resource["service.name"] for span in spans} == {"pipe-test"}
        assert spans[0].trace_id == f"{7:032x}" and spans[0].span_id == f"{1:016x}"
    finally:
        pipe.shutdown()
    assert pipe.dropped == 0


def test_shutdown_exports_what_is_queued_and_the_exporter_exits(receiver: OtlpReceiver) -> None:
    pipe = pipe_to(receiver, schedule_delay="600000")  # only the shutdown sends
    for number in range(1, 11):
        pipe.add(wire_span(number))
    assert receiver.posts == 0
    pid = pipe.exporter_pid
    assert pid is not None
    pipe.shutdown()
    assert len(receiver.spans) == 10
    with pytest.raises(ProcessLookupError):  # exited and reaped
        os.kill(pid, 0)


def test_a_full_batch_leaves_before_the_delay(receiver: OtlpReceiver) -> None:
    pipe = pipe_to(receiver, schedule_delay="600000", max_export_batch_size="5")
    try:
        for number in range(1, 6):
            pipe.add(wire_span(number))
        wait_for(lambda: len(receiver.spans) == 5)
    finally:
        pipe.shutdown()


def test_a_full_queue_drops_and_counts(receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture) -> None:
    pipe = pipe_to(receiver, schedule_delay="600000", max_queue_size="4", max_export_batch_size="100")
    for number in range(1, 11):
        pipe.add(wire_span(number, attempts=1))  # two spans each
    assert pipe.dropped == 12  # six requests, their spans counted
    pipe.shutdown()
    assert len(receiver.spans) == 8
    assert "12 spans dropped" in caplog.text


def test_a_request_json_cannot_carry_is_dropped_alone(
    receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    pipe = pipe_to(receiver, schedule_delay="600000")
    pipe.add(wire_span(1))
    unwritable = list(wire_span(2))
    unwritable[7] = {"gen_ai.input.messages": object()}  # extra_attributes: no type the path gives
    pipe.add(tuple(unwritable))
    pipe.add(wire_span(3))
    pipe.shutdown()
    assert sorted(span.attributes["gateway.request_id"] for span in receiver.spans) == ["req_1", "req_3"]
    assert pipe.dropped == 1
    assert "1 spans could not be written" in caplog.text


def test_a_dead_exporter_is_started_again(receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(span_pipe, "RESTART_INTERVAL", 0.0)
    pipe = pipe_to(receiver, schedule_delay="50")
    try:
        pipe.add(wire_span(1))
        wait_for(lambda: len(receiver.spans) == 1)
        first = pipe.exporter_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        time.sleep(0.3)  # dead by now: the next batch's write finds it so and starts another
        pipe.add(wire_span(2))
        wait_for(lambda: len(receiver.spans) == 2)
        assert pipe.exporter_pid not in (None, first)
    finally:
        pipe.shutdown()
    assert [span.span_id for span in receiver.spans] == [f"{1:016x}", f"{2:016x}"]
    assert pipe.dropped == 0


def test_a_dead_exporter_is_not_restarted_in_a_loop(
    receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    pipe = pipe_to(receiver, schedule_delay="50")  # RESTART_INTERVAL: 10 s since the first start
    try:
        first = pipe.exporter_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        time.sleep(0.3)
        pipe.add(wire_span(1))
        wait_for(lambda: pipe.dropped == 1)
        assert pipe.exporter_pid is None
    finally:
        pipe.shutdown()
    assert receiver.posts == 0
    assert "the span exporter exited with code -9" in caplog.text
