"""`Completion`: the upstream's answer is parsed once, for the record's usage and a traced attempt's span."""

from __future__ import annotations

from typing import Any, cast

from gateway.resilience.completion import Completion
from gateway.translate import Translator


class CountingTranslator:
    def __init__(self) -> None:
        self.given: list[Any] = []

    def response_usage(self, answer: Any) -> dict[str, Any] | None:
        self.given.append(answer)
        return answer.get("usage") if isinstance(answer, dict) else None


def completion(upstream: bytes, translator: CountingTranslator) -> Completion:
    return Completion(200, b"{}", {}, upstream, cast(Translator, translator))


def test_the_answer_is_parsed_once_and_usage_read_once_from_it() -> None:
    translator = CountingTranslator()
    reply = completion(b'{"id":"c1","model":"m","usage":{"prompt_tokens":3}}', translator)
    answer = reply.answer()
    assert answer == {"id": "c1", "model": "m", "usage": {"prompt_tokens": 3}}
    assert reply.answer() is answer
    assert reply.usage() == {"prompt_tokens": 3}
    assert reply.usage() == {"prompt_tokens": 3}
    assert len(translator.given) == 1 and translator.given[0] is answer


def test_an_answer_that_is_not_json_is_none_and_has_no_usage() -> None:
    translator = CountingTranslator()
    reply = completion(b"<html>busy</html>", translator)
    assert reply.answer() is None
    assert reply.usage() is None
    assert translator.given == [None]
