"""The translator seam: one class per (inbound API, upstream API) pair, one object per attempt.

A translator owns everything that depends on the two APIs: the upstream request body, the response body and
its usage, the stream events, and the upstream's error body. It is pure: no I/O, no routing (the dispatcher
picks one per attempt, from the original request body, so a failover to another upstream family starts
afresh). envoyproxy/ai-gateway's `internal/translator/` is the model: an interface, a file per pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gateway.config.models import ProviderConfig, RouteConfig
from gateway.errors import UpstreamStatusError
from gateway.streaming.relay import ByteStream, Relay, StreamCallback, StreamStats


class Translator(Protocol):
    """One attempt's translation. `stream` also satisfies the relay's `EventTranslator`."""

    def request_body(self, body: dict[str, Any], upstream_model: str, raw: bytes = b"") -> bytes:
        """The bytes to send upstream for the client's parsed `body` (never mutated); `raw` is the body as
        the client sent it, for a pass-through that need not re-serialise it."""
        ...

    def response_body(self, content: bytes) -> bytes:
        """The client's answer for a successful non-streaming upstream answer."""
        ...

    def response_usage(self, answer: Any) -> dict[str, Any] | None:
        """The usage of a non-streaming answer, in the gateway's (chat's) shape; `answer` is the upstream's
        JSON, parsed once for everyone who reads it (`resilience/completion.Completion.answer`), None when it
        is not JSON. Asked only when someone records requests."""
        ...

    def open_relay(self, upstream: ByteStream, stats: StreamStats, on_finish: list[StreamCallback]) -> Relay:
        """The relay of a streamed answer: `StreamRelay` (chat to chat, whole reads forwarded) or an
        `EventRelay` over this attempt's `StreamEvents` (`streaming/event_relay.py`)."""
        ...

    def upstream_error(
        self, status_code: int, content: bytes, headers: Mapping[str, str], provider: str
    ) -> UpstreamStatusError:
        """The error to answer for an upstream HTTP error answer, in the client's API's shape."""
        ...


class TranslatorFactory(Protocol):
    """A translator for one attempt: the client's parsed `body`, the target's provider and the route (its
    `default_max_tokens`, for APIs that require the field)."""

    def __call__(
        self, body: dict[str, Any], provider: ProviderConfig, *, stream: bool, route: RouteConfig
    ) -> Translator: ...


def usage_block(answer: Any) -> dict[str, Any] | None:
    """The `usage` object of a parsed chat answer as the upstream gave it (the gateway's usage shape)."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    return usage if isinstance(usage, dict) else None
