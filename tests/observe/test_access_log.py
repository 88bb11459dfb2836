"""The access log observer: one line per request with its fields, nothing built when INFO is off."""

from __future__ import annotations

import logging

import pytest

from gateway.observe import access_log
from gateway.observe.access_log import ACCESS_LOGGER, AccessLog
from gateway.records import RequestRecord


def finished(**changes: object) -> RequestRecord:
    values: dict[str, object] = {
        "request_id": "req_abc",
        "model": "chat",
        "route": "chat",
        "provider": "deepseek",
        "upstream_model": "deepseek-chat",
        "stream": True,
        "status_code": 200,
        "attempts": 2,
        "duration": 0.5,
        "key_name": "team-a",
        "time_to_first_chunk": 0.12,
        "chunks": 7,
        "stream_status": "ok",
        "usage": {"prompt_tokens": 10, "completion_tokens": 7},
    }
    values.update(changes)
    return RequestRecord(**values)  # type: ignore[arg-type]


async def test_one_line_per_request_with_route_provider_status_attempts_duration_tokens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        await AccessLog().request_finished(finished())
    [line] = caplog.records
    message = line.getMessage()
    assert message.startswith("stream model=chat route=chat provider=deepseek status=200")
    for part in (
        "attempts=2",
        "duration_ms=500.0",
        "prompt_tokens=10",
        "completion_tokens=7",
        "chunks=7",
        "first_token_ms=120.0",
        "key=team-a",
        "stream=ok",
    ):
        assert part in message
    fields = line.access  # type: ignore[attr-defined]
    assert fields["request_id"] == "req_abc" and fields["status"] == 200 and fields["duration_ms"] == 500.0
    assert fields["completion_tokens"] == 7 and fields["first_token_ms"] == 120.0
    assert line.request_id == "req_abc"  # type: ignore[attr-defined]


async def test_the_config_version_is_on_every_line_text_and_fields(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        await AccessLog().request_finished(finished(config_version="a561755b82a2"))
        await AccessLog().request_finished(finished(stream=False, status_code=401, attempts=0, usage=None))
    served, unknown = caplog.records
    assert "completion_tokens=7 config_version=a561755b82a2" in served.getMessage()
    assert served.access["config_version"] == "a561755b82a2"  # type: ignore[attr-defined]
    assert "config_version=-" in unknown.getMessage()  # a record made without a snapshot says so
    assert unknown.access["config_version"] is None  # type: ignore[attr-defined]


async def test_failed_request_without_route_or_usage(caplog: pytest.LogCaptureFixture) -> None:
    record = finished(
        stream=False,
        route=None,
        provider=None,
        status_code=404,
        attempts=0,
        usage=None,
        key_name=None,
        error_code="model_not_found",
    )
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        await AccessLog().request_finished(record)
    message = caplog.records[0].getMessage()
    assert "route=- provider=- status=404 attempts=0" in message
    assert "prompt_tokens=- completion_tokens=-" in message
    assert message.endswith("error=model_not_found")
    assert "chunks=" not in message and "key=" not in message


async def test_nothing_is_built_when_info_is_off(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(record: RequestRecord) -> dict[str, object]:
        raise AssertionError("fields built with the access log off")

    monkeypatch.setattr(access_log, "access_fields", fail)
    with caplog.at_level(logging.WARNING, logger=ACCESS_LOGGER):
        await AccessLog().request_finished(finished())
    assert caplog.records == []


async def test_the_cached_parts_of_the_prompt_are_fields(caplog: pytest.LogCaptureFixture) -> None:
    """`gateway replay` prices a logged request as the gateway did: it needs the cached and cache-write
    parts of prompt_tokens, which the usage's prompt_tokens_details names."""
    details = {"cached_tokens": 6, "cache_creation_tokens": 2}
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        await AccessLog().request_finished(
            finished(usage={"prompt_tokens": 10, "prompt_tokens_details": details})
        )
        await AccessLog().request_finished(finished(usage={"prompt_tokens": 10}))
        await AccessLog().request_finished(finished(usage=None, status_code=502))
    fields = [line.access for line in caplog.records]  # type: ignore[attr-defined]
    assert [(each["cached_tokens"], each["cache_write_tokens"]) for each in fields] == [
        (6, 2),
        (0, 0),
        (None, None),
    ]
