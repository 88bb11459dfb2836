"""A configured upstream provider: where its endpoints are, the headers it needs, and its transport.

A provider holds one `UpstreamTransport` (`transport.py`): our HTTP/1.1 pool for real upstreams, the mock
provider's in-process transport, or a test's `HttpxTransport`. Its kind (`kinds.py`) gives its URLs and
the API it speaks; what goes in the body is a translator's business (`translate/`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping

import orjson

from gateway import __version__
from gateway.config.models import ApiName, ProviderConfig, Timeouts
from gateway.errors import ProviderUnavailable, UpstreamError, UpstreamReadError, UpstreamTimeout
from gateway.providers.capacity import ConcurrencyLimit
from gateway.providers.error_mapping import map_upstream_errors
from gateway.providers.kinds import KINDS, ProviderKind
from gateway.providers.model_list import FETCH_TIMEOUT, ModelListCache
from gateway.providers.transport import PoolState, UpstreamTransport, WireRequest, WireResponse, WireTimeouts
from gateway.providers.upstream_answers import unusable_answer

# Response headers worth passing back to the client from a successful upstream answer.
_FORWARDED_HEADERS = ("openai-processing-ms", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests")

USER_AGENT = f"gateway/{__version__}"
_PARSED_JSON_LIMIT = 64 * 1024  # bytes: a JSON answer up to this size is parsed to check it is whole
ANTHROPIC_VERSION = "2023-06-01"  # sent to Messages upstreams unless the client sends its own
TRACE_HEADERS = frozenset({"traceparent", "tracestate"})  # W3C Trace Context, set per attempt when tracing

# Reads an upstream HTTP error answer (status, body, headers, provider name) into the error to raise:
# the attempt's translator knows the upstream's error shape and the client's (`Translator.upstream_error`).
ErrorReader = Callable[[int, bytes, Mapping[str, str], str], UpstreamError]


class UpstreamReply:
    """A complete, successful non-streaming answer."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, content: bytes, headers: dict[str, str]) -> None:
        self.status_code = status_code
        self.content = content
        self.headers = headers


class Provider:
    __slots__ = (
        "_base_headers",
        "_closed",
        "_errors",
        "_headers",
        "_limit",
        "_secrets",
        "_timeouts",
        "_untraced_headers",
        "apis",
        "config",
        "kind",
        "model_list",
        "name",
        "transport",
        "urls",
    )

    def __init__(self, config: ProviderConfig, transport: UpstreamTransport | None) -> None:
        """`transport` None: the provider is unavailable (`config.unavailable_reason` says why)."""
        self.config = config
        self.name = config.name
        self.kind: ProviderKind = KINDS[config.type]
        self.transport = transport
        self._closed = False
        self._errors = map_upstream_errors(config.name)  # stateless: one for every request
        # The APIs it speaks natively, in its config's order (the first is what others translate to).
        self.apis: tuple[ApiName, ...] = tuple(config.apis) or ("openai.chat",)
        endpoints = self.kind.endpoints
        self.urls: dict[ApiName, str] = {
            api: endpoints[api](base.rstrip("/"))
            for api, base in (config.apis or {"openai.chat": config.base_url}).items()
        }
        # Every header but Host and Content-Length, worked out once per API; a configured one replaces
        # ours whatever its case (a configured User-Agent, for example).
        headers = {"user-agent": USER_AGENT, "accept": "application/json, text/event-stream"}
        if self.kind.accept_encoding:
            headers["accept-encoding"] = self.kind.accept_encoding
        headers["content-type"] = "application/json"
        configured = {name.lower(): value for name, value in config.headers.items()}
        self._headers: dict[ApiName, tuple[tuple[str, str], ...]] = {}
        for api in self.urls:
            own = dict(headers)
            if api == "anthropic.messages":
                own["anthropic-version"] = ANTHROPIC_VERSION  # a client's own version replaces it
                if config.api_key:
                    own["x-api-key"] = config.api_key
            elif config.api_key:
                own["authorization"] = f"Bearer {config.api_key}"
            own.update(configured)
            self._headers[api] = tuple(own.items())
        # An attempt's own traceparent (tracing) replaces a configured one: the rest, made once.
        self._untraced_headers = {
            api: tuple(pair for pair in own if pair[0] not in TRACE_HEADERS)
            for api, own in self._headers.items()
        }
        self._base_headers = self._headers[self.apis[0]]
        # What an upstream's error body must never show in our log: its key and configured header values.
        self._secrets = tuple(v for v in (config.api_key, *config.headers.values()) if v)
        # Wire timeouts by route override (None: the provider's own), made once per distinct value.
        self._timeouts: dict[Timeouts | None, WireTimeouts] = {
            None: WireTimeouts.from_config(config.timeouts, config.pool.acquire_timeout)
        }
        self.model_list = ModelListCache(config.name, self._fetch_models)
        pool = config.pool
        self._limit = (
            ConcurrencyLimit(pool.max_concurrent_requests, pool.acquire_timeout, config.name)
            if pool.max_concurrent_requests is not None
            else None
        )

    @property
    def available(self) -> bool:
        return self.config.unavailable_reason is None and self.transport is not None

    @property
    def unavailable_reason(self) -> str | None:
        return self.config.unavailable_reason

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def chat_url(self) -> str | None:
        return self.urls.get("openai.chat")

    def build_request(
        self,
        content: bytes,
        request_id: str,
        timeouts: Timeouts | None = None,
        *,
        api: ApiName = "openai.chat",
        forwarded: tuple[tuple[str, str], ...] = (),
        path_suffix: str = "",
        trace: tuple[tuple[str, str], ...] = (),
    ) -> WireRequest:
        """The request to `api`'s endpoint (plus `path_suffix`, e.g. `/count_tokens`) for `content`;
        `timeouts` is a route's override (None: the provider's). `forwarded` are client headers passed on
        as they came (`anthropic-version`, `anthropic-beta`); each replaces the provider's own. `trace`:
        the attempt's `traceparent` (and `tracestate`), which replace any configured."""
        if self.transport is None:
            raise ProviderUnavailable(f"provider {self.name!r} is unavailable: {self.unavailable_reason}")
        own = self._untraced_headers[api] if trace else self._headers[api]
        if forwarded:
            names = {name for name, _ in forwarded}
            own = (*(pair for pair in own if pair[0] not in names), *forwarded)
        if trace:
            own = (*own, *trace)
        headers = [*own, ("x-request-id", request_id)] if request_id else own
        wire_timeouts = self._timeouts.get(timeouts)
        if wire_timeouts is None:  # bounded: the routes of a config have few distinct values
            assert timeouts is not None
            acquire = self.config.pool.acquire_timeout
            wire_timeouts = self._timeouts[timeouts] = WireTimeouts.from_config(timeouts, acquire)
        return WireRequest("POST", self.urls[api] + path_suffix, headers, content, wire_timeouts)

    async def complete(
        self, request: WireRequest, read_error: ErrorReader, first_byte: float | None = None
    ) -> UpstreamReply:
        """Send a non-streaming request; an HTTP error answer raises what `read_error` makes of it.

        `first_byte` bounds the wait for the response head (`UpstreamTimeout` when it passes)."""
        limit = self._limit
        if limit is None:
            return await self._complete(request, read_error, first_byte)
        await limit.acquire()
        try:
            return await self._complete(request, read_error, first_byte)
        finally:
            limit.release()

    async def _complete(
        self, request: WireRequest, read_error: ErrorReader, first_byte: float | None
    ) -> UpstreamReply:
        with self._errors:
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
        if response.status_code >= 300:
            raise self._answer_error(response, content, read_error)
        if not _whole_json(content, response.headers):
            # Nothing went to the client yet: retried and failed over like a broken connection.
            raise UpstreamReadError(
                f"provider {self.name!r} sent a JSON answer that is cut short ({len(content)} bytes)"
            )
        headers = {name: response.headers[name] for name in _FORWARDED_HEADERS if name in response.headers}
        return UpstreamReply(response.status_code, content, headers)

    async def open_stream(self, request: WireRequest, read_error: ErrorReader) -> UpstreamByteStream:
        """Send a streaming request and return its body once the response head is in.

        The caller owns the stream and must `aclose()` it on every path. An HTTP error answer is read,
        closed and raised as what `read_error` makes of it. With `max_concurrent_requests`, the stream
        holds its slot until it is closed.
        """
        limit = self._limit
        if limit is not None:
            await limit.acquire()
        try:
            with self._errors:
                response = await self._send(request)
                if response.status_code >= 300:
                    try:
                        content = await response.aread()
                    finally:
                        await response.aclose()
                    raise self._answer_error(response, content, read_error)
        except BaseException:
            if limit is not None:
                limit.release()
            raise
        release = limit.release if limit is not None else None
        return UpstreamByteStream(response, self.name, release, self._errors)

    def _answer_error(self, response: WireResponse, content: bytes, read_error: ErrorReader) -> UpstreamError:
        """The error for a non-2xx answer: a redirect or a refusal of our credentials is ours to word
        (`upstream_answers.py`); any other HTTP error is the translator's to read."""
        status, headers = response.status_code, response.headers
        own = unusable_answer(status, content, headers, self.name, self._secrets)
        return own if own is not None else read_error(status, content, headers, self.name)

    async def _send(self, request: WireRequest) -> WireResponse:
        transport = self.transport
        if transport is None or self._closed:
            raise ProviderUnavailable(f"provider {self.name!r} is closed or unavailable")
        return await transport.send(request)

    async def probe(self) -> int:
        """One health probe (`health_check.method` on `health_check.path`); returns the HTTP status.

        Through the same transport (and pool) as requests, without the body headers."""
        check = self.config.health_check
        headers = tuple((name, value) for name, value in self._base_headers if name != "content-type")
        url = self.kind.health_url(self.config.base_url.rstrip("/"), check.path)
        limit = check.timeout
        timeouts = WireTimeouts(connect=limit, read=limit, write=limit, pool=limit)
        request = WireRequest(check.method, url, headers, b"", timeouts)
        async with asyncio.timeout(check.timeout):
            try:
                return await self._probe_once(request)
            except UpstreamReadError:
                # A kept-alive connection the upstream closed just before the probe took it fails like
                # this; the probe is a GET, so once more, on a new connection, decides.
                return await self._probe_once(request)

    async def _fetch_models(self) -> tuple[int, bytes]:
        """`GET` of the provider's own model list (for `discover_models`), with its auth headers."""
        headers = tuple((name, value) for name, value in self._base_headers if name != "content-type")
        url = self.kind.models_url(self.config.base_url.rstrip("/"))
        limit = FETCH_TIMEOUT
        request = WireRequest("GET", url, headers, b"", WireTimeouts(limit, limit, limit, limit))
        with self._errors:
            response = await self._send(request)
            try:
                content = await response.aread()
            finally:
                await response.aclose()
        return response.status_code, content

    async def _probe_once(self, request: WireRequest) -> int:
        with self._errors:
            response = await self._send(request)
            try:
                await response.aread()  # read to its end, so the connection goes back to the pool
            finally:
                await response.aclose()
        return response.status_code

    def pool_state(self) -> PoolState:
        """Upstream connections lent to requests and kept idle, and requests waiting for a connection or
        (with `max_concurrent_requests`) a slot."""
        state = self.transport.pool_state() if self.transport is not None else PoolState(0, 0)
        if self._limit is not None and self._limit.waiting:
            return PoolState(state.in_use, state.idle, state.waiting + self._limit.waiting)
        return state

    @property
    def in_flight(self) -> int | None:
        """Requests in flight, counted only with `max_concurrent_requests` (None otherwise)."""
        return self._limit.in_flight if self._limit is not None else None

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.model_list.aclose()
        if self.transport is not None:
            await self.transport.aclose()


class UpstreamByteStream:
    """The bytes of a streaming upstream response as they arrive, with transport errors mapped to ours.

    Its own async iterator (`__aiter__` returns it), not an async generator: the relay stops reading at
    `[DONE]`, and an async generator left suspended there costs a finalizer task per stream."""

    __slots__ = ("_chunks", "_errors", "_release", "provider", "response")

    def __init__(
        self,
        response: WireResponse,
        provider: str,
        release: Callable[[], None] | None = None,
        errors: map_upstream_errors | None = None,
    ) -> None:
        self.response = response
        self.provider = provider
        self._release = release  # gives back a concurrency slot, once
        self._errors = errors if errors is not None else map_upstream_errors(provider)
        self._chunks: AsyncIterator[bytes] | None = None

    def __aiter__(self) -> UpstreamByteStream:
        return self

    async def __anext__(self) -> bytes:
        chunks = self._chunks
        if chunks is None:
            chunks = self._chunks = self.response.aiter_bytes()
        with self._errors:
            return await chunks.__anext__()

    @property
    def complete(self) -> bool:
        """The whole body has arrived (the transport may not know before the end of iteration)."""
        return self.response.complete

    async def aclose(self) -> None:
        try:
            await self.response.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


def _whole_json(content: bytes, headers: Mapping[str, str]) -> bool:
    """Is a JSON answer whole? Parsed when small (a chat answer: about a microsecond); a large one (an
    embeddings answer, where a parse costs milliseconds) must start and end like JSON: truncation, the
    failure seen in practice, rarely ends on a closing bracket."""
    if "json" not in headers.get("content-type", ""):
        return True
    if len(content) <= _PARSED_JSON_LIMIT:
        try:
            orjson.loads(content)
        except orjson.JSONDecodeError:
            return False
        return True
    start, end = content.lstrip()[:1], content.rstrip()[-1:]
    return (start, end) in ((b"{", b"}"), (b"[", b"]"))
