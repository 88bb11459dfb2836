"""The OpenAI chat -> OpenAI-compatible chat pair: request bodies, answers, usage, stream policy and the
upstream's error bodies, as tables."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.config.models import ProviderConfig
from gateway.translate import translator_for
from gateway.translate.openai_openai import OpenAIChatToOpenAIChat

MESSAGES = [{"role": "user", "content": "hi"}]


def provider(*, stream_usage: bool = True) -> ProviderConfig:
    return ProviderConfig(name="up", type="openai", base_url="http://up.test/v1", stream_usage=stream_usage)


def test_the_table_names_this_pair() -> None:
    assert translator_for("openai.chat", "openai.chat") is OpenAIChatToOpenAIChat


@pytest.mark.parametrize(
    ("body", "stream", "stream_usage", "sent"),
    [
        # Only the model changes; every other field goes as the client wrote it.
        (
            {"model": "alias", "messages": MESSAGES, "temperature": 0.2, "tools": [{"type": "function"}]},
            False,
            True,
            {"model": "up-model", "messages": MESSAGES, "temperature": 0.2, "tools": [{"type": "function"}]},
        ),
        # The gateway's own field never reaches a provider.
        (
            {"model": "m", "messages": MESSAGES, "x_use_asgi_streaming": True},
            False,
            True,
            {"model": "up-model", "messages": MESSAGES},
        ),
        # A stream asks for the usage chunk, keeping the client's other stream options.
        (
            {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"x": 1}},
            True,
            True,
            {
                "model": "up-model",
                "messages": MESSAGES,
                "stream": True,
                "stream_options": {"x": 1, "include_usage": True},
            },
        ),
        # ... unless the provider is told not to (stream_usage: false).
        (
            {"model": "m", "messages": MESSAGES, "stream": True},
            True,
            False,
            {"model": "up-model", "messages": MESSAGES, "stream": True},
        ),
    ],
)
def test_request_bodies(body: dict[str, Any], stream: bool, stream_usage: bool, sent: dict[str, Any]) -> None:
    original = orjson.dumps(body)
    translator = OpenAIChatToOpenAIChat(body, provider(stream_usage=stream_usage), stream=stream)
    assert orjson.loads(translator.request_body(body, "up-model")) == sent
    assert orjson.dumps(body) == original  # the client's body is never mutated (each attempt starts from it)


@pytest.mark.parametrize(
    ("client_asked", "stream_usage", "usage_only_kept", "usage_with_choices_kept"),
    [
        (False, True, False, True),  # asked for on the client's behalf: recorded, not forwarded
        (True, True, True, True),  # the client asked itself: forwarded
        (False, False, True, True),  # not asked for by the gateway: whatever comes goes on
    ],
)
def test_usage_chunk_policy(
    client_asked: bool, stream_usage: bool, usage_only_kept: bool, usage_with_choices_kept: bool
) -> None:
    body: dict[str, Any] = {"model": "m", "messages": MESSAGES, "stream": True}
    if client_asked:
        body["stream_options"] = {"include_usage": True}
    translator = OpenAIChatToOpenAIChat(body, provider(stream_usage=stream_usage), stream=True)
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert translator.keep_usage_event({"choices": [], "usage": usage}) is usage_only_kept
    assert translator.keep_usage_event({"choices": [{"index": 0}], "usage": usage}) is usage_with_choices_kept
    assert translator.passthrough


def test_answers_pass_through_and_usage_is_read_from_them() -> None:
    translator = OpenAIChatToOpenAIChat({}, provider(), stream=False)
    answer = b'{"id":"c","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":5,"total_tokens":9}}'
    assert translator.response_body(answer) is answer
    assert translator.response_usage(orjson.loads(answer)) == {
        "prompt_tokens": 4,
        "completion_tokens": 5,
        "total_tokens": 9,
    }
    assert translator.response_usage(orjson.loads(b'{"id":"c","choices":[]}')) is None
    assert translator.response_usage(orjson.loads(b'{"usage": null}')) is None
    assert translator.response_usage(["usage"]) is None
    assert translator.event(b'{"a":1}') == b'data: {"a":1}\n\n'


OPENAI_ERROR = (
    b'{"error":{"message":"bad key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}'
)


@pytest.mark.parametrize(
    ("status", "content", "message", "error_type", "code", "client_body"),
    [
        # OpenAI's own error object: passed through as the provider wrote it.
        (401, OPENAI_ERROR, "bad key", "invalid_request_error", "invalid_api_key", OPENAI_ERROR),
        # Ollama's {"error": "..."}: an OpenAI error object with the status kept.
        (
            404,
            b'{"error":"model \\"llama9\\" not found"}',
            'model "llama9" not found',
            "invalid_request_error",
            "upstream_error",
            None,
        ),
        (500, b'{"error":"out of memory"}', "out of memory", "server_error", "upstream_error", None),
        # Anything else: the status and the start of the text.
        (
            502,
            b"<html>bad gateway</html>",
            "upstream returned HTTP 502 from provider 'up': <html>bad gateway</html>",
            "server_error",
            "upstream_http_502",
            None,
        ),
        (
            503,
            b"",
            "upstream returned HTTP 503 from provider 'up'",
            "server_error",
            "upstream_http_503",
            None,
        ),
    ],
)
def test_upstream_error_bodies(
    status: int, content: bytes, message: str, error_type: str, code: str, client_body: bytes | None
) -> None:
    translator = OpenAIChatToOpenAIChat({}, provider(), stream=False)
    error = translator.upstream_error(status, content, {"retry-after": "3", "x-other": "y"}, "up")
    assert (error.status_code, error.message, error.error_type, error.code) == (
        status,
        message,
        error_type,
        code,
    )
    assert error.retryable_kind == str(status)  # `retry_on: ["429", ...]` matches the status
    assert error.headers == {"retry-after": "3"}  # only Retry-After reaches the client
    body = orjson.loads(error.body())
    if client_body is not None:
        assert error.body() == client_body
    else:
        assert body == {"error": {"message": message, "type": error_type, "param": None, "code": code}}
