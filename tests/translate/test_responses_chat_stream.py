"""Responses stream over an OpenAI chat stream: golden transcripts fed at every split.

`golden/responses_chat/NAME.upstream.sse` (chunks as a chat upstream sends them) -> `NAME.client.sse` (the
client's bytes, compared byte for byte) and `NAME.response.json` (the final `Response` the openai SDK's
own stream accumulator builds from those bytes). Each upstream is fed through `EventParser` and the
translator the way `EventRelay` does it: whole, split into two reads at every byte boundary, and one
byte per read. Every client event is checked against the published schema of its type.
`GOLDEN_UPDATE=1 pytest ...` rewrites the expected files from the code (then read the diff).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from gateway.config.models import ProviderConfig
from gateway.errors import RateLimited, UpstreamError, UpstreamProtocolError
from gateway.streaming.event_relay import EventRelay
from gateway.streaming.sse import EventParser
from gateway.streaming.stats import StreamStats
from gateway.translate.responses_chat import ResponsesToChat
from gateway.translate.responses_chat_stream import ResponsesStreamFromChat
from tests.support.responses_schemas import validate_response, validate_stream_event

GOLDEN = Path(__file__).parent / "golden" / "responses_chat"
UPDATE = os.environ.get("GOLDEN_UPDATE") == "1"
MODEL = "gpt-5"
CREATED = 1_700_000_000
EVENTS: TypeAdapter[ResponseStreamEvent] = TypeAdapter(ResponseStreamEvent)
PROVIDER = ProviderConfig(name="up", type="openai", base_url="http://up.test/v1")
COMPLETE = sorted(
    path.name.removesuffix(".upstream.sse")
    for path in GOLDEN.glob("stream_*.upstream.sse")
    if path.name != "stream_cut_off.upstream.sse"
)
BODY = {"model": MODEL, "input": "x", "stream": True}


def events() -> ResponsesStreamFromChat:
    return ResponsesToChat(BODY, PROVIDER, stream=True, clock=lambda: CREATED + 0.5).stream_events()


def relay(reads: Iterator[bytes] | list[bytes], stream: ResponsesStreamFromChat | None = None) -> bytes:
    """What `EventRelay` hands the client for these upstream reads (without its error handling)."""
    stream = stream or events()
    parser = EventParser()
    out: list[bytes] = []
    for read in reads:
        for name, data in parser.feed(read):
            out.append(stream.feed(name, data))
            if stream.ended:
                return b"".join([*out, stream.end()])
    for name, data in parser.flush():
        out.append(stream.feed(name, data))
        if stream.ended:
            break
    out.append(stream.end())
    return b"".join(out)


def splits(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    yield "whole", [data]
    for cut in range(1, len(data)):
        yield f"split at {cut}", [data[:cut], data[cut:]]
    yield "one byte per read", [data[i : i + 1] for i in range(len(data))]


def final_response(client: bytes) -> dict[str, Any]:
    """The client's stream checked event by event (schema, sequence numbers), then accumulated by the
    openai SDK; the response of its last lifecycle event."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    final: Any = None
    for position, (name, data) in enumerate(EventParser().feed(client)):
        payload = orjson.loads(data)
        assert payload["type"] == name
        assert payload["sequence_number"] == position
        validate_stream_event(payload)
        for event in state.handle_event(EVENTS.validate_python(payload)):
            if event.type in ("response.completed", "response.incomplete", "response.failed"):
                final = event.response
    assert final is not None
    result: dict[str, Any] = final.to_dict()
    validate_response(result)
    return result


@pytest.mark.parametrize("name", COMPLETE)
def test_stream_goldens_at_every_split(name: str) -> None:
    upstream = (GOLDEN / f"{name}.upstream.sse").read_bytes()
    whole = relay([upstream])
    if UPDATE:
        (GOLDEN / f"{name}.client.sse").write_bytes(whole)
    expected = (GOLDEN / f"{name}.client.sse").read_bytes()
    for how, reads in splits(upstream):
        assert relay(reads) == expected, how


@pytest.mark.parametrize("name", COMPLETE)
def test_the_sdk_builds_the_expected_response(name: str) -> None:
    response = final_response((GOLDEN / f"{name}.client.sse").read_bytes())
    path = GOLDEN / f"{name}.response.json"
    if UPDATE:
        path.write_text(orjson.dumps(response, option=orjson.OPT_INDENT_2).decode() + "\n")
    assert response == orjson.loads(path.read_bytes())


def test_the_stream_order_is_responses() -> None:
    client = (GOLDEN / "stream_two_tools.client.sse").read_bytes()
    names = [name for name, _ in EventParser().feed(client)]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[-1] == "response.completed"
    added = [
        orjson.loads(data)
        for name, data in EventParser().feed(client)
        if name == "response.output_item.added"
    ]
    assert [(a["output_index"], a["item"]["type"]) for a in added] == [
        (0, "message"),
        (1, "function_call"),
        (2, "function_call"),
    ]


def test_a_stream_cut_at_the_length_limit_is_incomplete() -> None:
    response = orjson.loads((GOLDEN / "stream_length.response.json").read_bytes())
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][-1]["status"] == "incomplete"


def test_a_cut_off_stream_raises_at_every_split() -> None:
    upstream = (GOLDEN / "stream_cut_off.upstream.sse").read_bytes()
    for how, reads in splits(upstream):
        with pytest.raises(UpstreamProtocolError, match="cut off"):
            relay(reads)
        del how


def test_the_closing_events_go_out_once_and_usage_is_chat_shaped() -> None:
    stream = events()
    upstream = (GOLDEN / "stream_cached_usage.upstream.sse").read_bytes()
    for name, data in EventParser().feed(upstream):
        stream.feed(name, data)
    assert stream.ended
    assert stream.usage is not None and stream.usage["prompt_tokens_details"] == {"cached_tokens": 1920}
    assert b"event: response.completed\n" in stream.end()
    assert stream.end() == b""
    assert stream.feed("", b'{"choices":[]}') == b""  # nothing after [DONE]


CHUNK = b'{"id":"c","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}'


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (b"not json", UpstreamProtocolError, "not JSON"),
        (b"[1, 2]", UpstreamProtocolError, "not an object"),
        (b'{"choices":["x"]}', UpstreamProtocolError, "choice that is not an object"),
        (
            b'{"choices":[{"delta":{"tool_calls":[{"function":{}}]}}]}',
            UpstreamProtocolError,
            "without an index",
        ),
        (
            b'{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"a"}]}}]}',
            UpstreamProtocolError,
            "without a name",
        ),
        (b'{"error":{"message":"model overloaded","code":503}}', UpstreamError, "model overloaded"),
        (b'{"error":"boom"}', UpstreamError, "boom"),
    ],
)
def test_malformed_and_error_chunks_raise(data: bytes, error: type[UpstreamError], words: str) -> None:
    stream = events()
    stream.feed("", CHUNK)
    with pytest.raises(error) as caught:
        stream.feed("", data)
    assert words in caught.value.message


def test_a_tool_call_continued_after_another_began_is_refused() -> None:
    stream = events()
    call = b'{"choices":[{"delta":{"tool_calls":[{"index":%d,"function":{"name":"t","arguments":""}}]}}]}'
    stream.feed("", call % 0)
    stream.feed("", call % 1)
    with pytest.raises(UpstreamProtocolError, match="continued after another item"):
        stream.feed("", b'{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}')


@pytest.mark.parametrize(
    ("exc", "code"),
    [(UpstreamProtocolError("cut off"), "server_error"), (RateLimited("slow down"), "rate_limit_exceeded")],
)
def test_a_failure_mid_stream_is_a_response_failed_event(exc: UpstreamError | RateLimited, code: str) -> None:
    stream = events()
    upstream = (GOLDEN / "stream_two_tools.upstream.sse").read_bytes()
    parsed = EventParser().feed(upstream)
    head = b"".join(stream.feed(name, data) for name, data in parsed[:4])
    client = head + stream.error(exc)
    name, data = EventParser().feed(client)[-1]
    assert name == "response.failed"
    response = final_response(client)
    assert response["status"] == "failed"
    assert response["error"] == {"code": code, "message": exc.message}
    assert orjson.loads(data)["response"]["error"] == response["error"]


def test_a_failure_before_any_chunk_still_opens_the_response() -> None:
    client = events().error(UpstreamProtocolError("nothing came"))
    assert [name for name, _ in EventParser().feed(client)] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    assert final_response(client)["status"] == "failed"


def test_an_openai_refusal_is_a_refusal_part() -> None:
    upstream = (
        b'data: {"id":"r","choices":[{"index":0,"delta":{"role":"assistant","content":"Hm."}}]}\n\n'
        b'data: {"id":"r","choices":[{"index":0,"delta":{"refusal":"I can"}}]}\n\n'
        b'data: {"id":"r","choices":[{"index":0,"delta":{"refusal":"\'t help."},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    response = final_response(relay([upstream]))
    parts = [{k: v for k, v in part.items() if k != "parsed"} for part in response["output"][0]["content"]]
    assert parts == [
        {"type": "output_text", "text": "Hm.", "annotations": [], "logprobs": []},
        {"type": "refusal", "refusal": "I can't help."},
    ]


class Upstream:
    """A `ByteStream` over fixed reads."""

    def __init__(self, reads: list[bytes]) -> None:
        self._reads = reads
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for read in self._reads:
            yield read

    @property
    def complete(self) -> bool:
        return True

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.parametrize("name", ["stream_two_tools", "stream_reasoning_text", "stream_cut_off"])
async def test_through_the_event_relay(name: str) -> None:
    upstream_bytes = (GOLDEN / f"{name}.upstream.sse").read_bytes()
    upstream = Upstream([upstream_bytes[i : i + 7] for i in range(0, len(upstream_bytes), 7)])
    translator = ResponsesToChat(BODY, PROVIDER, stream=True, clock=lambda: CREATED)
    stats = StreamStats(stream_id="s", provider="up", model=MODEL)
    relay_ = translator.open_relay(upstream, stats, [])
    assert isinstance(relay_, EventRelay)
    await relay_.prime()
    out = b"".join([frame async for frame in relay_.frames()])
    await relay_.aclose()
    assert upstream.closed
    if name == "stream_cut_off":
        assert EventParser().feed(out)[-1][0] == "response.failed"
        assert final_response(out)["error"]["message"].endswith("(cut off)")
        assert stats.status == "error"
        return
    assert out == (GOLDEN / f"{name}.client.sse").read_bytes()
    assert stats.status == "ok"
    upstream_usage = [
        orjson.loads(d).get("usage") for _, d in EventParser().feed(upstream_bytes) if d != b"[DONE]"
    ]
    assert stats.usage == next((u for u in reversed(upstream_usage) if u), None)


def test_a_call_without_arguments_gets_an_empty_object() -> None:
    upstream = (
        b'data: {"id":"n","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a",'
        b'"function":{"name":"now","arguments":""}}]}}]}\n\n'
        b'data: {"id":"n","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    response = final_response(relay([upstream]))
    assert [(item["call_id"], item["arguments"]) for item in response["output"]] == [("call_a", "{}")]
