"""The attempt loop: walk a route's targets by its strategy, retry per policy, fail over on retryable errors.

Each attempt starts from the client's original body and gets its own translation. A stream is committed to
the client only after its first event has arrived (`Relay.prime`), so everything before that byte can
still be retried or failed over; nothing after it ever is.

Per request: targets whose provider is unhealthy (active checks) or whose circuit is open are skipped while
another one can be used; when none can, every target is tried in order anyway (panic mode) rather than
failing fast. Per target: up to `attempts` tries, with exponential backoff (full jitter) or the provider's
Retry-After between them; a 4xx other than 429 is the request's fault and is never retried. A failure of
the target's configuration (a 3xx, the provider refusing the gateway's credentials, an address the SSRF
guard refuses) is never retried on that target and always fails over to the next one. Timeouts:
`connect`/`read`/`write` are httpx's; `first_byte` and `total` (per attempt) and the route's `deadline`
(whole request) are enforced here with the event loop's clock.

The happy path (first attempt succeeds) costs a dict lookup, two clock reads and a few attribute stores.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.config.apis import upstream_api
from gateway.config.models import ApiName, RouteConfig
from gateway.errors import ProviderUnavailable, UpstreamError, UpstreamTimeout
from gateway.providers.base import Provider
from gateway.providers.registry import ProviderRegistry
from gateway.providers.transport import WireRequest
from gateway.resilience.attempt_trace import AttemptTracer
from gateway.resilience.completion import Completion
from gateway.resilience.deadline import DeadlineByteStream
from gateway.resilience.health import HealthRegistry
from gateway.resilience.plan import PlannedTarget, RoutePlan
from gateway.routing.table import RouteMatch
from gateway.streaming.relay import ByteStream, Relay, StreamCallback, StreamStats
from gateway.translate import Translator, translator_for

logger = logging.getLogger("gateway.resilience")

Result = TypeVar("Result")
Attempt = Callable[["RequestContext", PlannedTarget, "float | None"], Awaitable[Result]]


@dataclass(slots=True)
class RequestContext:
    """One client request as the dispatcher sees it; `attempts` and `provider` are filled in as it runs."""

    request_id: str
    match: RouteMatch
    body: dict[str, Any]
    stream: bool
    api: ApiName = "openai.chat"  # what the client speaks; each attempt translates to its upstream's API
    started: float = field(default_factory=time.perf_counter)
    attempts: int = 0
    retries: int = 0  # attempts repeated on the same target
    failovers: int = 0  # moves to the next target after one failed
    provider: str | None = None
    upstream_model: str | None = None
    key_name: str | None = None  # set by access control: the gateway key's name, never its secret
    forwarded: tuple[tuple[str, str], ...] = ()  # client headers for an upstream of the same API
    raw: bytes = b""  # the body as the client sent it (a pass-through may send it unchanged)
    on_stream_finish: list[StreamCallback] = field(default_factory=list)
    trace: AttemptTracer | None = None  # the request's tracer; None: tracing is off
    trace_headers: tuple[tuple[str, str], ...] = ()  # the current attempt's traceparent, while tracing
    keep_streamed: bool = False  # a stream keeps what it hands the client (prices are configured)

    @property
    def route(self) -> RouteConfig:
        return self.match.route


class Dispatcher:
    """Sends requests for one runtime snapshot. `health` is the per-provider state (breakers, checks,
    latency); build it with `HealthRegistry.build(registry, previous)` to carry it across reloads."""

    __slots__ = ("_plans", "health", "registry", "rng")

    def __init__(
        self,
        registry: ProviderRegistry,
        health: HealthRegistry | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.registry = registry
        self.health = health if health is not None else HealthRegistry.build(registry)[0]
        self.rng = rng
        self._plans: dict[int, RoutePlan] = {}

    def plan(self, route: RouteConfig) -> RoutePlan:
        """The prepared plan of `route`, built on first use (routes of one config live as long as it)."""
        plan = self._plans.get(id(route))
        if plan is None or plan.route is not route:
            plan = self._plans[id(route)] = RoutePlan(route, self.registry, self.health, self.rng)
        return plan

    async def complete(self, ctx: RequestContext) -> Completion:
        return await self._run(ctx, self._complete_once)

    async def open_stream(self, ctx: RequestContext) -> Relay:
        return await self._run(ctx, self._stream_once)

    # The loop.

    async def _run(self, ctx: RequestContext, attempt: Attempt[Result]) -> Result:
        plan = self.plan(ctx.route)
        if plan.unavailable is not None:
            raise ProviderUnavailable(plan.unavailable, param="model")
        deadline_at: float | None = None
        if plan.deadline is not None:
            spent = time.perf_counter() - ctx.started
            deadline_at = asyncio.get_running_loop().time() + plan.deadline - spent
        now = time.monotonic()
        order = plan.order(now)
        last_error: UpstreamError | None = None
        try:
            tried = False
            for entry in order:
                if not entry.health.acquire(time.monotonic() if tried else now):
                    continue
                if tried:
                    _check_deadline(deadline_at, last_error)
                    ctx.failovers += 1
                    logger.info("request %s fails over to provider %s", ctx.request_id, entry.provider.name)
                tried = True
                try:
                    return await self._try_target(ctx, entry, attempt, deadline_at, panic=False)
                except UpstreamError as exc:
                    if not entry.rules.retries(exc):
                        raise
                    last_error = exc
            if not tried:
                logger.warning(
                    "route %s: no healthy target, trying all in order (panic mode)", ctx.route.name
                )
                for entry in order:
                    if last_error is not None:
                        _check_deadline(deadline_at, last_error)
                        ctx.failovers += 1
                    try:
                        return await self._try_target(ctx, entry, attempt, deadline_at, panic=True)
                    except UpstreamError as exc:
                        if not entry.rules.retries(exc):
                            raise
                        last_error = exc
            assert last_error is not None
            raise last_error
        finally:
            # The error's traceback holds this frame, whose local holds the error: a cycle that would
            # keep the whole request for the cyclic collector (which runs rarely: api/app.py).
            last_error = None

    async def _try_target(
        self,
        ctx: RequestContext,
        entry: PlannedTarget,
        attempt: Attempt[Result],
        deadline_at: float | None,
        *,
        panic: bool,
    ) -> Result:
        """Attempts on one target until one succeeds or the policy gives up (the last error is raised).
        Each retry is taken from the provider's retry budget (`retry_budget.py`); when it is spent the
        last error is raised, so the request fails over."""
        rules = entry.rules
        health = entry.health
        budget = health.retry_budget
        budget.first_attempt(time.monotonic())
        retry = 0
        granted = False  # a retry taken from the budget, until its attempt ends
        try:
            while True:
                holds_trial = not panic and health.breaker.state != "closed"
                ctx.attempts += 1
                trace = ctx.trace
                if trace is not None:
                    config = entry.provider.config
                    ctx.trace_headers = trace.attempt(
                        ctx.attempts, config.name, config.type, entry.target.model or ctx.match.model,
                        config.base_url,
                    )  # fmt: skip
                started = time.perf_counter()
                budget.in_flight += 1
                try:
                    try:
                        result = await attempt(ctx, entry, deadline_at)
                    finally:
                        budget.in_flight -= 1
                        if granted:
                            granted = False
                            budget.retry_ended()
                except UpstreamError as exc:
                    if trace is not None:
                        trace.failed(exc)
                    health.record_error(exc, time.monotonic(), time.perf_counter() - started)
                    if holds_trial:
                        health.release()  # a 429 says nothing about recovery; a failure already reopened
                    retry += 1
                    # A redirect or refused credentials will not change on this target: fail over only.
                    if exc.target_misconfigured or not rules.retries(exc) or retry >= rules.attempts:
                        raise
                    wait = rules.wait_before(retry, exc)
                    if wait is None:
                        logger.info(
                            "provider %s asked to wait longer than retry_after_cap", entry.provider.name
                        )
                        raise
                    if deadline_at is not None and asyncio.get_running_loop().time() + wait >= deadline_at:
                        raise
                    if not budget.allows_retry(time.monotonic()):
                        logger.info(
                            "request %s: provider %s's retry budget is spent, no retry (%s)",
                            ctx.request_id, entry.provider.name, exc.retryable_kind,
                        )  # fmt: skip
                        raise
                    granted = True
                    logger.info(
                        "request %s: provider %s failed (%s), retry %d in %.3fs",
                        ctx.request_id, entry.provider.name, exc.retryable_kind, retry, wait,
                    )  # fmt: skip
                    if wait > 0:
                        await asyncio.sleep(wait)
                    if not panic and not health.acquire(time.monotonic()):
                        raise  # the breaker opened meanwhile: fail over instead
                    ctx.retries += 1
                    continue
                except BaseException as exc:
                    if trace is not None:
                        trace.failed(exc)
                    if holds_trial:
                        health.release()  # cancelled (client gone): let another request be the trial
                    raise
                if ctx.stream:
                    health.record_stream_start(time.perf_counter() - started)  # the verdict: at its end
                else:
                    health.record_success(time.perf_counter() - started)
                return result
        finally:
            if granted:  # cancelled, or given up, before the granted retry was sent
                budget.retry_ended()

    # One attempt.

    async def _complete_once(
        self, ctx: RequestContext, entry: PlannedTarget, deadline_at: float | None
    ) -> Completion:
        provider = entry.provider
        request, translator = self._prepare(ctx, entry, provider, stream=False)
        timeouts = entry.timeouts
        limit_at, why = _attempt_limit(timeouts.total, deadline_at)
        read_error = translator.upstream_error
        if limit_at is None:
            reply = await provider.complete(request, read_error, first_byte=timeouts.first_byte)
        else:
            try:
                async with asyncio.timeout_at(limit_at):
                    reply = await provider.complete(request, read_error, first_byte=timeouts.first_byte)
            except TimeoutError:
                raise UpstreamTimeout(f"provider {provider.name!r} timed out ({why})") from None
        content = translator.response_body(reply.content)
        completion = Completion(reply.status_code, content, reply.headers, reply.content, translator)
        trace = ctx.trace
        if trace is not None and trace.recording:  # an unsampled request's trace only carries headers
            trace.completed(completion.answer(), completion.usage())
        return completion

    async def _stream_once(
        self, ctx: RequestContext, entry: PlannedTarget, deadline_at: float | None
    ) -> Relay:
        provider = entry.provider
        request, translator = self._prepare(ctx, entry, provider, stream=True)
        read_error = translator.upstream_error
        timeouts = entry.timeouts
        limit_at, limit_why = _attempt_limit(timeouts.total, deadline_at)
        first_at, why = limit_at, limit_why
        if timeouts.first_byte is not None:
            first_byte_at = asyncio.get_running_loop().time() + timeouts.first_byte
            if first_at is None or first_byte_at < first_at:
                first_at, why = first_byte_at, f"first_byte timeout of {timeouts.first_byte:g}s"
        relay: Relay | None = None
        try:
            if first_at is None:
                upstream = await provider.open_stream(request, read_error)
                relay = self._relay(ctx, provider, translator, upstream, None, "")
                await relay.prime()
            else:
                async with asyncio.timeout_at(first_at):
                    upstream = await provider.open_stream(request, read_error)
                    relay = self._relay(ctx, provider, translator, upstream, limit_at, limit_why)
                    await relay.prime()
            # Only now: a stream cut mid-way counts against its target (a failed start did already).
            relay.on_finish.append(entry.health.stream_finished)
            trace = ctx.trace
            if trace is not None and trace.recording:  # first: the attempt's span ends before the request's
                relay.on_finish.insert(0, trace.stream_finished)
            return relay
        except TimeoutError:
            await _discard(relay)
            raise UpstreamTimeout(f"provider {provider.name!r} timed out ({why})") from None
        except BaseException:
            await _discard(relay)
            raise

    def _prepare(
        self, ctx: RequestContext, entry: PlannedTarget, provider: Provider, *, stream: bool
    ) -> tuple[WireRequest, Translator]:
        """This attempt's translator (by the client's API and the provider's) and its upstream request,
        from the client's original body."""
        ctx.provider = provider.name
        model = ctx.upstream_model = entry.target.model or ctx.match.model
        api = upstream_api(ctx.api, provider.apis)
        factory = translator_for(ctx.api, api) if api is not None else None
        if factory is None or api is None:
            raise ProviderUnavailable(
                f"provider {provider.name!r} speaks {', '.join(provider.apis)}, which the gateway cannot "
                f"translate {ctx.api} to"
            )
        translator = factory(ctx.body, provider.config, stream=stream, route=ctx.route)
        content = translator.request_body(ctx.body, model, ctx.raw)
        # Client headers (anthropic-version, anthropic-beta) go on only to an upstream of the client's API.
        forwarded = ctx.forwarded if api == ctx.api else ()
        request = provider.build_request(
            content,
            ctx.request_id,
            entry.request_timeouts,
            api=api,
            forwarded=forwarded,
            trace=ctx.trace_headers,
        )
        return request, translator

    def _relay(
        self,
        ctx: RequestContext,
        provider: Provider,
        translator: Translator,
        upstream: ByteStream,
        limit_at: float | None,
        why: str,
    ) -> Relay:
        if limit_at is not None:
            # total/deadline keep running after the first event: the relay reads under them.
            message = f"provider {provider.name!r} timed out mid-stream ({why})"
            upstream = DeadlineByteStream(upstream, limit_at, message)
        stats = StreamStats(ctx.request_id, provider.name, ctx.upstream_model or "", started=ctx.started)
        if ctx.keep_streamed:
            stats.streamed = []
        return translator.open_relay(upstream, stats, ctx.on_stream_finish)


def _attempt_limit(total: float | None, deadline_at: float | None) -> tuple[float | None, str]:
    """When this attempt must end (loop clock), and which limit that is."""
    if total is None:
        return deadline_at, "request deadline"
    at = asyncio.get_running_loop().time() + total
    if deadline_at is not None and deadline_at <= at:
        return deadline_at, "request deadline"
    return at, f"total timeout of {total:g}s"


def _check_deadline(deadline_at: float | None, last_error: UpstreamError | None) -> None:
    """Stop failing over once the request deadline has passed: the last error answers."""
    if deadline_at is not None and asyncio.get_running_loop().time() >= deadline_at:
        if last_error is not None:
            raise last_error
        raise UpstreamTimeout("the request deadline passed before any provider answered")


async def _discard(relay: Relay | None) -> None:
    """Close a stream attempt that will not reach the client (it is not a finished stream)."""
    if relay is not None:
        relay.on_finish = []
        await relay.aclose()
