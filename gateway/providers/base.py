"""A configured upstream provider: its API family, its pooled httpx client and its availability.

Providers receive their `httpx.AsyncClient` ready-made (see `registry.py`), so unit tests can inject one
with `httpx.MockTransport` and end-to-end tests point it at the provider simulator. Requests go to the
client's transport directly; over the H1 transport (every real upstream) without httpx's models.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from gateway.config.models import ProviderConfig, Timeouts
from gateway.errors import ProviderUnavailable, UpstreamStatusError, UpstreamTimeout
from gateway.providers import openai_openai
from gateway.providers.h1 import ACCEPT_ENCODING, H1Transport, PoolState
from gateway.providers.transport import httpx_timeout, map_upstream_errors

# Response headers worth passing back to the client from a successful upstream answer.
_FORWARDED_HEADERS = ("openai-processing-ms", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests")


@dataclass(frozen=True, slots=True)
class UpstreamReply:
    """A complete, successful non-streaming answer."""

    status_code: int
    content: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """A chat request ready to send: the translated body, every header but Host and Content-Length,
    and httpx's timeout extension (`connect`/`read`/`write`/`pool`)."""

    content: bytes
    headers: list[tuple[str, str]]
    timeout: dict[str, float | None]


class UpstreamResponse(Protocol):
    """An upstream answer whose head is in: `httpx.Response`, or `H1Response` on the fast path."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    async def aread(self) -> bytes: ...
    def aiter_bytes(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


def chat_url(config: ProviderConfig) -> str:
    base = config.base_url.rstrip("/")
    if config.type == "ollama":
        # Ollama serves the OpenAI-compatible API under /v1 of its root URL.
        return (base if base.endswith("/v1") else base + "/v1") + "/chat/completions"
    return base + "/chat/completions"


def health_url(config: ProviderConfig) -> str:
    base = config.base_url.rstrip("/")
    path = config.health_check.path
    if config.type == "ollama" and path == "/models":
        return base.removesuffix("/v1") + "/api/tags"
    return base + path


class Provider:
    __slots__ = (
        "_base_headers",
        "_chat_headers",
        "_chat_url",
        "_timeout_extensions",
        "_transport",
        "chat_url",
        "client",
        "config",
        "name",
    )

    def __init__(self, config: ProviderConfig, client: httpx.AsyncClient | None) -> None:
        self.config = config
        self.name = config.name
        self.client = client
        self.chat_url = chat_url(config)
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        headers.update(config.headers)
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        self._base_headers = headers
        # What `AsyncClient.build_request` would work out per request, done once: the parsed URL, the
        # client's default headers (user-agent, accept-encoding) under ours, the timeout extension.
        # (An unavailable provider has no client, and its base URL may not even parse.)
        self._chat_url = httpx.URL(self.chat_url) if client is not None else None
        chat_headers = httpx.Headers(client.headers if client is not None else None)
        chat_headers.update(headers)  # case-insensitive: a configured User-Agent replaces httpx's
        self._timeout_extensions: dict[Timeouts | None, dict[str, float | None]] = {}
        # The client's transport, called directly (see `_send`): the H1 pool, the mock provider's
        # in-process transport, or a test's `httpx.MockTransport`. httpx has no public accessor for it.
        self._transport: httpx.AsyncBaseTransport | None = None
        if client is not None:
            self._timeout_extensions[None] = client.timeout.as_dict()
            self._transport = client._transport
        if isinstance(self._transport, H1Transport):
            chat_headers["accept-encoding"] = ACCEPT_ENCODING  # what it decodes (httpx may offer br, zstd)
        self._chat_headers = chat_headers.multi_items()

    @property
    def available(self) -> bool:
        return self.config.unavailable_reason is None and self.client is not None

    @property
    def unavailable_reason(self) -> str | None:
        return self.config.unavailable_reason

    def translate(self, body: dict[str, Any], upstream_model: str, *, stream: bool) -> bytes:
        request_usage = stream and self.config.stream_usage
        return openai_openai.translate_request(body, upstream_model, request_usage=request_usage)

    def build_request(
        self, content: bytes, request_id: str, timeouts: Timeouts | None = None
    ) -> UpstreamRequest:
        if self._chat_url is None:
            raise ProviderUnavailable(f"provider {self.name!r} is unavailable: {self.unavailable_reason}")
        headers = [*self._chat_headers, ("x-request-id", request_id)] if request_id else self._chat_headers
        timeout = self._timeout_extensions.get(timeouts)
        if timeout is None:  # a route's own timeouts; one entry per distinct value, bounded by the config
            assert timeouts is not None  # None (the client's defaults) is filled in by __init__
            timeout = self._timeout_extensions[timeouts] = httpx_timeout(timeouts).as_dict()
        return UpstreamRequest(content, headers, timeout)

    async def complete(self, request: UpstreamRequest, first_byte: float | None = None) -> UpstreamReply:
        """Send a non-streaming request; an HTTP error answer raises `UpstreamStatusError`.

        `first_byte` bounds the wait for the response head (`UpstreamTimeout` when it passes)."""
        with map_upstream_errors(self.name):
            if first_byte is None:
                response = await self._send(request)
            else:
                try:
                    async with asyncio.timeout(first_byte):
                        response = await self._send(request)
                except TimeoutError:
                    raise UpstreamTimeout(
                        f"provider {self.name!r} timed out (first_byte timeout of {first_byte:g}s)"
                    ) from None
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        if response.status_code >= 400:
            raise UpstreamStatusError(
                response.status_code, content, headers=_error_headers(response), provider=self.name
            )
        headers = {name: response.headers[name] for name in _FORWARDED_HEADERS if name in response.headers}
        return UpstreamReply(response.status_code, content, headers)

    async def open_stream(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send a streaming request and return the open response once its head is in.

        The caller owns the response and must `aclose()` it on every path. An HTTP error answer is read,
        closed and raised as `UpstreamStatusError`.
        """
        with map_upstream_errors(self.name):
            response = await self._send(request)
            if response.status_code >= 400:
                try:
                    content = await response.aread()
                finally:
                    await response.aclose()
                raise UpstreamStatusError(
                    response.status_code, content, headers=_error_headers(response), provider=self.name
                )
        return response

    async def _send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Hand the request to the client's transport; the response head is in, its body not yet read.

        Not `AsyncClient.send`: its auth flow, redirect loop, cookie jar and event hooks do nothing for
        us (the key is a header, redirects are off, upstream cookies must not carry over to other
        callers) and cost a quarter of the gateway's CPU per request (bench/README.md). Over the H1
        transport (the real upstreams) httpx's request and response models are skipped too; any other
        transport (the mock provider's, a test's `httpx.MockTransport`) gets an `httpx.Request`."""
        client, transport = self.client, self._transport
        if client is None or transport is None or client.is_closed or self._chat_url is None:
            raise ProviderUnavailable(f"provider {self.name!r} is closed or unavailable")
        if isinstance(transport, H1Transport):
            return await transport.send(self.chat_url, request.headers, request.content, request.timeout)
        extensions = {"timeout": request.timeout}
        httpx_request = httpx.Request(
            "POST", self._chat_url, content=request.content, headers=request.headers, extensions=extensions
        )
        return await transport.handle_async_request(httpx_request)

    async def probe(self) -> int:
        """One health probe (`health_check.method` on `health_check.path`); returns the HTTP status."""
        if self.client is None:
            raise ProviderUnavailable(f"provider {self.name!r} is unavailable: {self.unavailable_reason}")
        check = self.config.health_check
        headers = {k: v for k, v in self._base_headers.items() if k != "content-type"}
        with map_upstream_errors(self.name):
            response = await self.client.request(
                check.method, health_url(self.config), headers=headers, timeout=check.timeout
            )
        return response.status_code

    def pool_state(self) -> PoolState:
        """Upstream connections lent to requests and kept idle (tests check that streams release theirs)."""
        transport = self._transport
        if not isinstance(transport, H1Transport):
            return PoolState(0, 0)  # no pool: unavailable, or an in-process transport
        return transport.pool_state()

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def _error_headers(response: UpstreamResponse) -> dict[str, str]:
    retry_after = response.headers.get("retry-after")
    return {"retry-after": retry_after} if retry_after else {}


class UpstreamByteStream:
    """The bytes of a streaming upstream response as they arrive, with httpx errors mapped to ours.

    `aiter_bytes` (not `aiter_raw`): httpx asks for compressed bodies by default, and a provider that
    gzips its event stream must still reach the SSE parser as text (on the H1 fast path the transport
    decodes it). Without compression it passes each read through unchanged.
    """

    __slots__ = ("provider", "response")

    def __init__(self, response: UpstreamResponse, provider: str) -> None:
        self.response = response
        self.provider = provider

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with map_upstream_errors(self.provider):
            async for chunk in self.response.aiter_bytes():
                yield chunk

    @property
    def complete(self) -> bool:
        """The whole body has arrived (known on the H1 fast path; otherwise only at the end of iteration)."""
        return getattr(self.response, "complete", False) is True

    async def aclose(self) -> None:
        await self.response.aclose()
