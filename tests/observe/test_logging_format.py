"""Logging setup: LOG_LEVEL / LOG_FORMAT, the request id on every line, JSON lines and the access fields."""

from __future__ import annotations

import contextvars
import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from gateway.observe.access_log import ACCESS_LOGGER, AccessLog
from gateway.observe.logging import GATEWAY_LOGGER, SERVER_LOGGER, configure_logging
from gateway.observe.request_id import bind_request_id, current_request_id
from gateway.records import RequestRecord


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    """A stream for `configure_logging`; the gateway logger's handlers, level and propagation restored
    afterwards (pytest's log capture relies on propagation)."""
    loggers = [logging.getLogger(GATEWAY_LOGGER), logging.getLogger(SERVER_LOGGER)]
    saved = [(logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    stream = io.StringIO()
    try:
        yield stream
    finally:
        for logger, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            logger.handlers[:], logger.level, logger.propagate = handlers, level, propagate


def in_request(request_id: str | None, function: object) -> None:
    """Run `function` in a fresh context with `request_id` bound, like a request's task."""

    def run() -> None:
        if request_id is not None:
            bind_request_id(request_id)
        function()  # type: ignore[operator]

    contextvars.copy_context().run(run)


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_request_id_of_the_context(output: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=output)
    logger = logging.getLogger("gateway.stream")
    in_request("req_one", lambda: logger.info("stream %s ended", "x"))
    in_request(None, lambda: logger.warning("outside any request"))
    assert current_request_id.get() is None  # nothing leaked into this context
    first, second = json_lines(output)
    assert first["request_id"] == "req_one"
    assert (first["level"], first["logger"], first["message"]) == ("INFO", "gateway.stream", "stream x ended")
    assert str(first["time"]).endswith("Z")
    assert "request_id" not in second and second["level"] == "WARNING"


def test_json_exception_is_one_line_with_its_traceback(output: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=output)

    def fail() -> None:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("gateway.api").exception("observer failed")

    in_request("req_two", fail)
    [line] = json_lines(output)
    assert line["request_id"] == "req_two"
    assert "RuntimeError: boom" in str(line["exception"])


def test_text_lines_put_the_request_id_after_the_logger(output: io.StringIO) -> None:
    configure_logging("DEBUG", "text", stream=output)
    in_request("req_three", lambda: logging.getLogger("gateway.api").debug("hello %d", 1))
    logging.getLogger("gateway").info("no request")
    first, second = output.getvalue().splitlines()
    assert " DEBUG gateway.api req_three: hello 1" in first
    assert second.endswith(" INFO gateway: no request")


def test_level_and_format_come_from_the_environment(
    output: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "warning")
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    configure_logging(stream=output)
    logger = logging.getLogger("gateway.api")
    logger.info("dropped")
    logger.warning("kept")
    assert [line["message"] for line in json_lines(output)] == ["kept"]
    assert logging.getLogger(GATEWAY_LOGGER).level == logging.WARNING


@pytest.mark.parametrize(
    ("level", "output_format", "message"), [("LOUD", None, "log level"), (None, "xml", "format")]
)
def test_unknown_level_or_format_is_refused_before_anything_changes(
    output: io.StringIO, level: str | None, output_format: str | None, message: str
) -> None:
    root = logging.getLogger(GATEWAY_LOGGER)
    handlers = root.handlers[:]
    with pytest.raises(ValueError, match=message):
        configure_logging(level, output_format, stream=output)
    assert root.handlers == handlers


async def test_the_access_line_in_json_has_its_fields_at_the_top_level(output: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=output)
    record = RequestRecord(
        request_id="req_four",
        model="chat",
        route="chat",
        provider="b",
        upstream_model="m",
        stream=False,
        status_code=200,
        attempts=2,
        duration=0.0123,
        usage={"prompt_tokens": 5, "completion_tokens": 9},
        failovers=1,
    )
    await AccessLog().request_finished(record)
    [line] = json_lines(output)
    assert line["logger"] == ACCESS_LOGGER and line["level"] == "INFO"
    assert line["request_id"] == "req_four"
    expected = {"route": "chat", "provider": "b", "status": 200, "attempts": 2, "failovers": 1, "retries": 0}
    assert {name: line[name] for name in expected} == expected
    assert (line["duration_ms"], line["prompt_tokens"], line["completion_tokens"]) == (12.3, 5, 9)
    assert str(line["message"]).startswith("complete model=chat route=chat provider=b status=200 attempts=2")


async def test_a_silenced_access_log_formats_nothing(output: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=output)
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.WARNING)
    try:
        record = RequestRecord("req_five", "chat", "chat", "b", None, False, 200, 1, 0.01)
        await AccessLog().request_finished(record)
    finally:
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.NOTSET)
    assert output.getvalue() == ""
