"""What the streamers and the dispatcher hold of a relay (`Relay`), what a relay holds of its upstream
(`ByteStream`) and of its translator (`EventTranslator`), and the one rule both relays follow when the
shutdown cuts a stream (`cut_cause`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

from gateway.errors import GatewayError
from gateway.streaming.callbacks import StreamCallback
from gateway.streaming.stats import StreamStats

# The scope key under which the in-flight middleware leaves the request's drain entry (`runtime/drain.py`):
# a streamer sets its `stream` to the relay, so the shutdown can end the stream with an error event.
STREAM_SLOT = "gateway.stream_slot"


class ByteStream(Protocol):
    """What providers hand the relay: upstream bytes (errors already mapped to ours) and a close."""

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    @property
    def complete(self) -> bool:
        """Whether the whole body is known to have arrived (False when it cannot tell)."""
        ...

    async def aclose(self) -> None: ...


class EventTranslator(Protocol):
    """The stream side of the attempt's translator (`gateway.translate`)."""

    @property
    def passthrough(self) -> bool:
        """Events go to the client as they came (the fast path), except those `keep_usage_event` drops."""
        ...

    def keep_usage_event(self, event: dict[str, Any]) -> bool:
        """Whether an event carrying a usage block goes on to the client (its usage is recorded anyway)."""
        ...

    def event(self, payload: bytes) -> bytes:
        """The client's frames for one event's data (b"": none); used when not `passthrough`."""
        ...


class Relay(Protocol):
    """What the streamers and the dispatcher hold: `StreamRelay` here, or `event_relay.EventRelay`."""

    stats: StreamStats
    on_finish: list[StreamCallback]

    @property
    def done(self) -> bool: ...
    async def prime(self) -> None: ...
    def frames(self) -> AsyncGenerator[bytes, None]: ...
    async def aclose(self) -> None: ...
    def mark_disconnected(self) -> None: ...
    def cut(self, error: GatewayError) -> None: ...


def cut_cause(cut: GatewayError | None) -> GatewayError | None:
    """In an `except CancelledError` of a relay: the cut error when the cancellation was the cut's alone
    (then it is taken back and the stream ends with the error event), else None (re-raise)."""
    task = asyncio.current_task()
    if cut is None or task is None or task.uncancel() > 0:
        return None
    return cut
