"""Golden transcripts for the chat -> Messages pair (`gateway/translate/chat_messages.py`).

Files live in `golden/chat_messages/`: `NAME.in.json` -> `NAME.out.json` (requests and answers: pretty
JSON, compared to the translator's bytes as `orjson.dumps(orjson.loads(file))`, so key order counts),
`NAME.upstream.sse` -> `NAME.client.sse` (streams, byte for byte). `CHAT_GOLDEN_WRITE=1` rewrites the
expected files from the translator's output, to be read in review before committing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from gateway.config.models import ProviderConfig, RouteConfig, Target
from gateway.errors import GatewayError
from gateway.streaming.event_relay import StreamEvents
from gateway.streaming.sse import EventParser
from gateway.translate.chat_messages import ChatToMessages

GOLDEN = Path(__file__).parent / "golden" / "chat_messages"
CREATED = 1_700_000_000
PROVIDER = ProviderConfig(name="anthropic", type="anthropic", base_url="https://api.anthropic.test/v1")
ROUTE = RouteConfig(
    name="claude", model="claude", targets=(Target(provider="anthropic"),), default_max_tokens=1024
)
WRITE = os.environ.get("CHAT_GOLDEN_WRITE") == "1"


def translator(body: dict[str, Any], *, stream: bool = False) -> ChatToMessages:
    return ChatToMessages(body, PROVIDER, stream=stream, route=ROUTE, clock=lambda: CREATED + 0.75)


def read_json(name: str) -> Any:
    return orjson.loads((GOLDEN / name).read_bytes())


def expected_json(name: str, actual: bytes) -> bytes:
    """The compact bytes `name` holds (written from `actual` first when regenerating)."""
    path = GOLDEN / name
    if WRITE:
        path.write_bytes(orjson.dumps(orjson.loads(actual), option=orjson.OPT_INDENT_2) + b"\n")
    return orjson.dumps(orjson.loads(path.read_bytes()))


def expected_bytes(name: str, actual: bytes) -> bytes:
    path = GOLDEN / name
    if WRITE:
        path.write_bytes(actual)
    return path.read_bytes()


def relay(events: StreamEvents, reads: list[bytes]) -> bytes:
    """What `EventRelay` sends the client for these upstream reads: each parsed event fed in order, a stop
    at `ended`, then `end()` (also at the end of the body); any `GatewayError` becomes the final error
    frame."""
    parser = EventParser()
    out: list[bytes] = []
    try:
        for chunk in reads:
            for name, data in parser.feed(chunk):
                out.append(events.feed(name, data))
                if events.ended:
                    out.append(events.end())
                    return b"".join(out)
        for name, data in parser.flush():
            out.append(events.feed(name, data))
            if events.ended:
                break
        out.append(events.end())
    except GatewayError as exc:
        out.append(events.error(exc))
    return b"".join(out)


def splits(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """The upstream body in one read, in two reads split at every byte boundary, and one byte per read."""
    yield "whole", [data]
    for cut in range(1, len(data)):
        yield f"split at {cut}", [data[:cut], data[cut:]]
    yield "byte by byte", [data[i : i + 1] for i in range(len(data))]


def sse_events(client: bytes) -> list[dict[str, Any]]:
    """The JSON payloads of a chat stream's frames (`[DONE]` left out)."""
    payloads = [block.removeprefix(b"data: ") for block in client.split(b"\n\n") if block]
    return [orjson.loads(payload) for payload in payloads if payload != b"[DONE]"]
