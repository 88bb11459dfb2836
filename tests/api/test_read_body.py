"""`read_body`: the whole body from `receive`, in the pieces the server hands over, as Starlette reads it."""

from __future__ import annotations

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from gateway.api.body import read_body


def receiving(*messages: Message) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0)

    return receive


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([{"type": "http.request", "body": b"{}"}], b"{}"),
        ([{"type": "http.request"}], b""),
        (
            [
                {"type": "http.request", "body": b'{"a"', "more_body": True},
                {"type": "http.request", "body": b"", "more_body": True},
                {"type": "http.request", "body": b": 1}"},
            ],
            b'{"a": 1}',
        ),
    ],
)
async def test_the_body_is_read_whole(messages: list[Message], expected: bytes) -> None:
    assert await read_body(receiving(*messages)) == expected


async def test_a_client_gone_before_the_end_raises_starlettes_disconnect() -> None:
    first: Message = {"type": "http.request", "body": b"{", "more_body": True}
    receive = receiving(first, {"type": "http.disconnect"})
    with pytest.raises(ClientDisconnect):
        await read_body(receive)
