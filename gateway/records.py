"""The record of one finished request, handed to every observer (usage accounting, metrics, access log).

It sits at the bottom of the import graph so `access/` and `observe/` can read it without importing each
other or `api/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(slots=True)
class RequestRecord:
    request_id: str
    model: str  # what the client asked for
    route: str | None  # route name, None when no route matched
    provider: str | None
    upstream_model: str | None
    stream: bool
    status_code: int
    attempts: int
    duration: float  # seconds, request arrival to last byte
    key_name: str | None = None  # the gateway key used, by name (never the secret)
    time_to_first_chunk: float | None = None  # streams only
    chunks: int = 0
    stream_status: str | None = None  # ok | error | disconnected; set only for a stream that was relayed
    usage: dict[str, Any] | None = None  # upstream `usage` block when the provider reported one
    error_code: str | None = None
    # Appended last: fields before them are also given by position by some callers.
    retries: int = 0  # attempts repeated on the same provider
    failovers: int = 0  # moves to the next target after a provider failed
    chunk_interval: float | None = None  # mean gap between a stream's events, seconds (2+ events)
    max_chunk_interval: float | None = None  # longest gap between two events of a stream, seconds
    api: str = "chat"  # the API the client spoke, by its short name (chat, messages)
    # What the request cost (`prices:`), in nano-units (1e-9) of `currency`; None: no price applies.
    cost: int | None = None
    currency: str | None = None
    cost_estimated: bool = False  # a stream cut before its usage: charged from what was streamed
    config_version: str = ""  # of the config snapshot that served the request

    @property
    def prompt_tokens(self) -> int:
        return int((self.usage or {}).get("prompt_tokens") or 0)

    @property
    def completion_tokens(self) -> int:
        return int((self.usage or {}).get("completion_tokens") or 0)

    def prompt_detail(self, name: str) -> int:
        """A count of the usage's `prompt_tokens_details` (`cached_tokens`, `cache_creation_tokens`): part
        of `prompt_tokens`, priced apart (`prices:` cached_input, cache_write)."""
        details = (self.usage or {}).get("prompt_tokens_details")
        return int(details.get(name) or 0) if isinstance(details, dict) else 0


class RequestObserver(Protocol):
    """Called once per chat request when it has finished (streams: when the last byte went out)."""

    async def request_finished(self, record: RequestRecord) -> None: ...


class StreamObserver(Protocol):
    """Told when a stream has been opened (its first event is in, the client is about to get it); its end
    arrives as a `RequestRecord` with `stream_status` set. Synchronous: it runs on the request path."""

    def stream_opened(self) -> None: ...
