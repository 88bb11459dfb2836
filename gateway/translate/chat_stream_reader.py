"""The reading half of every translation from a chat completion stream (to Anthropic Messages events, to
Responses events): each chunk parsed and checked (`stream_errors.parse_chat_chunk`), its usage kept, the
first choice's delta and finish_reason handed on, `[DONE]` noted. A subclass writes the client's frames:
`_begin` once, before the first chunk's, and `_delta` for each delta; its `end` closes the stream.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import UpstreamProtocolError
from gateway.streaming.sse import DONE
from gateway.streaming.stream_errors import parse_chat_chunk


class ChatStreamReader:
    __slots__ = ("_closed", "_ended", "_finish_reason", "_started", "_usage")

    def __init__(self) -> None:
        self._started = False  # the client's opening frames went out
        self._ended = False  # [DONE] arrived
        self._closed = False  # the client's closing frames went out
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def usage(self) -> dict[str, Any] | None:
        return self._usage

    def feed(self, event: str, data: bytes) -> bytes:
        if self._ended:
            return b""
        if data == DONE:
            self._ended = True
            return b""
        chunk = parse_chat_chunk(data)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        out: list[bytes] = []
        if not self._started:
            self._started = True
            self._begin(chunk, out)
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices:
            choice = choices[0]
            if not isinstance(choice, dict):
                raise UpstreamProtocolError("the upstream sent a choice that is not an object")
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._delta(delta, out)
            finish = choice.get("finish_reason")
            if isinstance(finish, str) and finish:
                self._finish_reason = finish
        return b"".join(out)

    def _begin(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        """The client's opening frames, from the first chunk (its id, its model)."""
        raise NotImplementedError

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        """The client's frames for one chat delta."""
        raise NotImplementedError
