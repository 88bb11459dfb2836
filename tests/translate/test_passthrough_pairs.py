"""The pass-through pairs (Messages, Responses, embeddings): the body unchanged, the events re-framed as
they came, usage read in the gateway's shape, an incomplete stream refused."""

from __future__ import annotations

import orjson
import pytest

from gateway.config.models import ProviderConfig, RouteConfig, Target
from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.streaming.sse import EventParser
from gateway.translate.embeddings import EmbeddingsToEmbeddings
from gateway.translate.messages_messages import MessagesEvents, MessagesToMessages
from gateway.translate.responses_responses import ResponsesEvents, ResponsesToResponses

PROVIDER = ProviderConfig(name="up", type="openai", base_url="http://up.test/v1")
ROUTE = RouteConfig(name="r", model="m", targets=(Target("up"),))
RAW = b'{"model": "m",  "input": "x"}'


@pytest.mark.parametrize("pair", [MessagesToMessages, ResponsesToResponses, EmbeddingsToEmbeddings])
def test_the_body_goes_as_it_came_unless_the_model_is_renamed(pair: type) -> None:
    body = orjson.loads(RAW)
    translator = pair(body, PROVIDER, stream=False, route=ROUTE)
    assert translator.request_body(body, "m", RAW) is RAW
    assert orjson.loads(translator.request_body(body, "other", RAW)) == {**body, "model": "other"}
    assert translator.response_body(b'{"a": 1}') == b'{"a": 1}'


def feed_all(events: MessagesEvents | ResponsesEvents, raw: bytes) -> bytes:
    out = b"".join(events.feed(name, data) for name, data in EventParser().feed(raw))
    return out + events.end()


RESPONSES_STREAM = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0}\n\n'
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"hi"}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","response":{"usage":'
    b'{"input_tokens":5,"output_tokens":2,"total_tokens":7,"input_tokens_details":{"cached_tokens":3}}}}\n\n'
)


def test_responses_events_pass_through_and_read_the_final_usage() -> None:
    events = ResponsesEvents("up")
    assert feed_all(events, RESPONSES_STREAM) == RESPONSES_STREAM
    assert events.ended
    assert events.usage == {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 3},
    }
    cut = ResponsesEvents("up")
    with pytest.raises(UpstreamProtocolError, match=r"before response\.completed"):
        feed_all(cut, RESPONSES_STREAM.rsplit(b"event: response.completed", 1)[0])
    assert cut.error(GatewayError("boom")).startswith(b"event: error\ndata: ")


MESSAGES_STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":9,'
    b'"cache_read_input_tokens":4,"output_tokens":1}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"hi"}}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":6}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def test_messages_events_pass_through_and_merge_usage() -> None:
    events = MessagesEvents("up")
    assert feed_all(events, MESSAGES_STREAM) == MESSAGES_STREAM
    assert events.usage == {
        "prompt_tokens": 13,
        "completion_tokens": 6,
        "total_tokens": 19,
        "prompt_tokens_details": {"cached_tokens": 4, "cache_creation_tokens": 0},
    }
    # An event without an `event:` line is named by its data's type.
    assert MessagesEvents("up").feed("", b'{"type":"ping"}') == b'event: ping\ndata: {"type":"ping"}\n\n'
    with pytest.raises(UpstreamProtocolError, match="before message_stop"):
        feed_all(MessagesEvents("up"), MESSAGES_STREAM.rsplit(b"event: message_stop", 1)[0])
