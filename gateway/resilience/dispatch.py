"""The attempt loop: walk a route's targets, send, and fail over on retryable upstream errors.

Each attempt starts from the client's original body and gets its own translation. A stream is committed to
the client only after its first event has arrived (`StreamRelay.prime`), so everything before that byte can
still fail over; nothing after it is ever retried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gateway.config.models import RouteConfig, Target
from gateway.errors import GatewayError, ProviderUnavailable, UpstreamError
from gateway.providers.base import Provider, UpstreamByteStream, UpstreamReply
from gateway.providers.registry import ProviderRegistry
from gateway.routing.table import RouteMatch
from gateway.streaming.relay import StreamCallback, StreamRelay, StreamStats


@dataclass(slots=True)
class RequestContext:
    """One client request as the dispatcher sees it; `attempts` and `provider` are filled in as it runs."""

    request_id: str
    match: RouteMatch
    body: dict[str, Any]
    stream: bool
    client_wants_usage: bool = False
    started: float = field(default_factory=time.perf_counter)
    attempts: int = 0
    provider: str | None = None
    upstream_model: str | None = None
    key_name: str | None = None  # set by access control: the gateway key's name, never its secret
    on_stream_finish: list[StreamCallback] = field(default_factory=list)

    @property
    def route(self) -> RouteConfig:
        return self.match.route


class Dispatcher:
    __slots__ = ("registry",)

    def __init__(self, registry: ProviderRegistry) -> None:
        self.registry = registry

    def candidates(self, route: RouteConfig) -> list[tuple[Target, Provider]]:
        """The targets to try, in order, with their providers (unavailable ones skipped)."""
        ordered = sorted(route.targets, key=lambda target: target.priority)
        out: list[tuple[Target, Provider]] = []
        reasons: list[str] = []
        for target in ordered:
            provider = self.registry.get(target.provider)
            if provider is None:
                reasons.append(f"provider {target.provider!r} is not configured")
            elif not provider.available:
                reasons.append(f"provider {target.provider!r} is unavailable: {provider.unavailable_reason}")
            else:
                out.append((target, provider))
        if not out:
            raise ProviderUnavailable(
                f"no provider can serve route {route.name!r}: " + "; ".join(reasons), param="model"
            )
        return out

    async def complete(self, ctx: RequestContext) -> UpstreamReply:
        last_error: GatewayError | None = None
        for target, provider in self.candidates(ctx.route):
            ctx.attempts += 1
            ctx.provider = provider.name
            ctx.upstream_model = target.model or ctx.match.model
            content = provider.translate(ctx.body, ctx.upstream_model, stream=False)
            request = provider.build_request(content, ctx.request_id, ctx.route.timeouts)
            try:
                return await provider.complete(request)
            except UpstreamError as exc:
                if not _fails_over(exc):
                    raise
                last_error = exc
        assert last_error is not None
        raise last_error

    async def open_stream(self, ctx: RequestContext) -> StreamRelay:
        last_error: GatewayError | None = None
        for target, provider in self.candidates(ctx.route):
            ctx.attempts += 1
            ctx.provider = provider.name
            ctx.upstream_model = target.model or ctx.match.model
            content = provider.translate(ctx.body, ctx.upstream_model, stream=True)
            request = provider.build_request(content, ctx.request_id, ctx.route.timeouts)
            relay: StreamRelay | None = None
            try:
                response = await provider.open_stream(request)
                stats = StreamStats(ctx.request_id, provider.name, ctx.upstream_model, started=ctx.started)
                relay = StreamRelay(
                    UpstreamByteStream(response, provider.name),
                    stats,
                    drop_usage_chunk=provider.config.stream_usage and not ctx.client_wants_usage,
                    on_finish=ctx.on_stream_finish,
                )
                await relay.prime()
                return relay
            except UpstreamError as exc:
                if relay is not None:
                    relay.on_finish = []  # a failed attempt is not a finished stream
                    await relay.aclose()
                if not _fails_over(exc):
                    raise
                last_error = exc
        assert last_error is not None
        raise last_error


def _fails_over(exc: UpstreamError) -> bool:
    """Client errors from upstream (4xx other than 429) are the request's fault: no other target helps."""
    status = exc.status_code
    return not (400 <= status < 500 and status != 429)
