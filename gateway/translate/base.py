"""The translator seam: one class per (inbound API, upstream API) pair, one object per attempt.

A translator owns everything that depends on the two APIs: the upstream request body, the response body and
its usage, the stream events, and the upstream's error body. It is pure: no I/O, no routing (the dispatcher
picks one per attempt, from the original request body, so a failover to another upstream family starts
afresh). envoyproxy/ai-gateway's `internal/translator/` is the model: an interface, a file per pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from gateway.config.models import ProviderConfig
from gateway.errors import UpstreamStatusError

# API families on either side. A new one adds a name here, an endpoint in `api/`, translators here, and
# (for an upstream) a provider kind in `providers/kinds.py`.
ApiName = Literal["openai.chat"]


class Translator(Protocol):
    """One attempt's translation. `stream` also satisfies the relay's `EventTranslator`."""

    def request_body(self, body: dict[str, Any], upstream_model: str) -> bytes:
        """The bytes to send upstream for the client's parsed `body` (never mutated)."""
        ...

    def response_body(self, content: bytes) -> bytes:
        """The client's answer for a successful non-streaming upstream answer."""
        ...

    def response_usage(self, content: bytes) -> dict[str, Any] | None:
        """The usage block of a non-streaming answer (asked only when someone records requests)."""
        ...

    # The stream side (`streaming.relay.EventTranslator`).

    @property
    def passthrough(self) -> bool:
        """Events reach the client as they came, except those carrying usage (see `keep_usage_event`)."""
        ...

    def keep_usage_event(self, event: dict[str, Any]) -> bool:
        """Whether an event carrying a usage block goes on to the client."""
        ...

    def event(self, payload: bytes) -> bytes:
        """The client's frames for one upstream event's data (b"": none); used when not `passthrough`."""
        ...

    def upstream_error(
        self, status_code: int, content: bytes, headers: Mapping[str, str], provider: str
    ) -> UpstreamStatusError:
        """The error to answer for an upstream HTTP error answer, in the client's API's shape."""
        ...


class TranslatorFactory(Protocol):
    def __call__(self, body: dict[str, Any], provider: ProviderConfig, *, stream: bool) -> Translator: ...
