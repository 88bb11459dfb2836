"""What every inbound API records: one `RequestRecord` per request, handed to the observers (metrics,
access log, usage accounting) on every exit, a bug included.

An `Exchange` is opened when a request arrives and filled in as it is admitted; whatever point a failure
is reached from, it holds what the record needs (the model once parsed, the dispatcher's context once
routed). A `GatewayError` is recorded with its own status; any other exception is a bug: logged with its
traceback here, recorded as 500 `internal_error`, and answered as a plain `GatewayError` (OpenAI's error
shape, no traceback, nothing of the request).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from gateway.access.budgets import BudgetHold
from gateway.access.controller import AccessController
from gateway.config.prices import PriceTable, format_cost
from gateway.errors import GatewayError
from gateway.observe.config_version import CONFIG_VERSION_HEADER
from gateway.observe.tracing_spans import RequestTrace
from gateway.records import RequestObserver, RequestRecord
from gateway.resilience.attempt_trace import AttemptTracer
from gateway.resilience.dispatch import RequestContext
from gateway.runtime.snapshot import Runtime
from gateway.streaming.relay import StreamStats
from gateway.translate.prompt_tokens import count_prompt
from gateway.translate.streamed_tokens import count_output
from gateway.translate.token_estimate import estimate_input_tokens, most_input_tokens
from gateway.translate.tokenizer import LazyTokenizer, Tokenizer

logger = logging.getLogger("gateway.api")

INTERNAL_ERROR_MESSAGE = "internal gateway error"


@dataclass(slots=True)
class Exchange:
    """One inbound request from arrival to its record."""

    request_id: str
    started: float  # time.perf_counter() at arrival
    observers: list[RequestObserver]
    model: str = ""  # as the client asked for it, once the body is parsed
    ctx: RequestContext | None = None  # once routed
    limit_headers: dict[str, str] | None = None  # x-ratelimit-* of an admitted key
    api: str = "chat"  # the inbound API's short name, for the record
    trace: RequestTrace | None = None  # the request's span; None: tracing is off or it is not sampled
    upstream_trace: AttemptTracer | None = None  # what its attempts report to (`trace`, or headers only)
    prices: PriceTable | None = None  # of the runtime serving it; None: no prices, nothing is costed
    hold: BudgetHold | None = None  # a key with budgets: settled with the real cost in `finish`
    access: AccessController | None = None  # who settles `hold`
    runtime: Runtime | None = None  # the snapshot serving it (its config version), once started
    tokenizer: LazyTokenizer | None = None  # for a priced stream: what charges it when it is cut

    def record(self, status_code: int, *, usage: dict[str, Any] | None = None) -> RequestRecord:
        ctx = self.ctx
        if ctx is None:
            return RequestRecord(
                request_id=self.request_id,
                model=self.model,
                route=None,
                provider=None,
                upstream_model=None,
                stream=False,
                status_code=status_code,
                attempts=0,
                duration=time.perf_counter() - self.started,
                usage=usage,
                api=self.api,
                config_version=self.runtime.config.version if self.runtime is not None else "",
            )
        record = RequestRecord(
            request_id=ctx.request_id,
            model=self.model,
            route=ctx.route.name,
            provider=ctx.provider,
            upstream_model=ctx.upstream_model,
            stream=ctx.stream,
            status_code=status_code,
            attempts=ctx.attempts,
            duration=time.perf_counter() - ctx.started,
            retries=ctx.retries,
            failovers=ctx.failovers,
            key_name=ctx.key_name,
            usage=usage,
            api=self.api,
            config_version=self.runtime.config.version if self.runtime is not None else "",
        )
        prices = self.prices
        if prices is not None and usage is not None and ctx.provider is not None:
            price = prices.price(ctx.provider, ctx.upstream_model or self.model)
            if price is not None:
                record.cost, record.currency = price.cost(usage), prices.currency
        return record

    async def failed(self, error: GatewayError) -> None:
        """Record `error` (about to be answered) and put the gateway's headers on it."""
        ctx = self.ctx
        error.headers.update(gateway_headers(ctx) if ctx is not None else {"x-gateway-attempts": "0"})
        if self.runtime is not None:
            error.headers[CONFIG_VERSION_HEADER] = self.runtime.config.version
        if self.observers or self.trace is not None or self.hold is not None:
            record = self.record(error.status_code)
            record.error_code = error.code
            await self.finish(record)

    def cancelled(self) -> None:
        """The request was cancelled from outside (shutdown) before an answer: no record follows, so
        its hold is released here, charged nothing (what the upstream did is unknown), and its spans
        end here, as cancelled."""
        if self.hold is not None and self.access is not None:
            self.access.settle(self.hold, 0)
        if self.trace is not None:
            self.trace.cancelled(self.request_id)

    async def crashed(self, exc: Exception) -> GatewayError:
        """Log and record the bug `exc` (call it in its `except` block); returns the error to answer."""
        logger.error("unhandled error on request %s", self.request_id, exc_info=exc)
        error = GatewayError(INTERNAL_ERROR_MESSAGE)
        await self.failed(error)
        return error

    async def stream_finished(self, stats: StreamStats) -> None:
        """`RequestContext.on_stream_finish` callback: the record of a relayed stream."""
        record = self.record(200, usage=stats.usage)
        cut = stats.status != "ok" and (stats.usage is None or stats.usage_partial)
        if cut and stats.chunks and self.prices is not None:
            await self._charge_estimate(record, stats)
        record.time_to_first_chunk = stats.first_chunk - stats.started if stats.first_chunk else None
        record.chunks = stats.chunks
        record.stream_status = stats.status
        record.chunk_interval = stats.average_interval
        record.max_chunk_interval = stats.max_interval if stats.chunks > 1 else None
        await self.finish(record, failure=stats.failure)

    async def finish(
        self, record: RequestRecord, answer: bytes | None = None, failure: GatewayError | None = None
    ) -> None:
        """Settle the budget hold, hand `record` to the observers and end the request's span (`answer`:
        the body sent). Every exit of a request comes here once (errors via `failed`, streams via
        `stream_finished`); the hold's own flag makes a second settle a no-op."""
        if self.hold is not None and self.access is not None:
            self.access.settle(self.hold, budget_cost(record, self.hold))
        await notify(self.observers, record)
        if self.trace is not None:
            self.trace.finish(record, self.ctx.body if self.ctx is not None else None, answer, failure)

    async def _charge_estimate(self, record: RequestRecord, stats: StreamStats) -> None:
        """A stream cut before its usage arrived costs what was streamed, counted by the cl100k tokenizer
        (in a worker thread, loaded by the first cut stream): the prompt from the request, the output from
        the frames the client got (`stats.streamed`). A prompt count the upstream sent before the cut
        (Anthropic's `message_start`) is used as it is. The record carries the estimate as its usage."""
        ctx, prices = self.ctx, self.prices
        if ctx is None or ctx.provider is None or prices is None:
            return
        if prices.price(ctx.provider, ctx.upstream_model or self.model) is None:
            return  # not priced: nothing to count (and no tokenizer to load for it)
        tokenizer = await self.tokenizer.get() if self.tokenizer is not None else None
        if tokenizer is None:  # no tokenizer installed: the prompt by characters, a token per event
            prompt, output = estimate_prompt_tokens(ctx.body), stats.chunks
        else:
            prompt, output = await asyncio.to_thread(_count_cut_stream, tokenizer, ctx.body, stats)
        estimate = dict(stats.usage or {})  # a partial usage keeps its cache details
        if int(estimate.get("prompt_tokens") or 0) <= 0:
            estimate["prompt_tokens"] = prompt
        estimate["completion_tokens"] = max(output, int(estimate.get("completion_tokens") or 0))
        estimate["total_tokens"] = estimate["prompt_tokens"] + estimate["completion_tokens"]
        costed = self.record(200, usage=estimate)
        if costed.cost is not None:
            record.cost, record.currency, record.cost_estimated = costed.cost, costed.currency, True
            record.usage = estimate


def _count_cut_stream(tokenizer: Tokenizer, body: dict[str, Any], stats: StreamStats) -> tuple[int, int]:
    """Prompt and output tokens of a cut stream (blocking: tokenizing a long prompt takes milliseconds)."""
    return count_prompt(tokenizer, body), count_output(tokenizer, stats)


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """The prompt's tokens by the characters of what the model reads (when no tokenizer could load),
    for every inbound API: chat and Messages `messages`, Responses `input`, completions `prompt`."""
    read = body.get("messages") or body.get("input") or body.get("prompt")
    return estimate_input_tokens({"system": body.get("system") or body.get("instructions"), "messages": read,
                                  "tools": body.get("tools")})  # fmt: skip


def most_prompt_tokens(body: dict[str, Any]) -> int:
    """At most the prompt's tokens (a budget's hold: translate/token_estimate.py), for every inbound API."""
    read = body.get("messages") or body.get("input") or body.get("prompt")
    return most_input_tokens({"system": body.get("system") or body.get("instructions"), "messages": read,
                              "tools": body.get("tools")})  # fmt: skip


def budget_cost(record: RequestRecord, hold: BudgetHold) -> int:
    """What a request of a key with budgets is charged: its cost (a cut stream's estimate included);
    nothing when no attempt produced an answer (refused, every target failed, the client left before
    the first event); an answer that reported no usage, its hold (the most it could have cost)."""
    if record.cost is not None:
        return record.cost
    if record.status_code < 400 and record.attempts and record.stream_status in (None, "ok"):
        return hold.amount or 0
    return 0


def cost_header(record: RequestRecord) -> str | None:
    """`x-gateway-cost` of a non-streaming answer: `0.000123 USD`, or None when nothing was costed."""
    if record.cost is None:
        return None
    return f"{format_cost(record.cost)} {record.currency}"


def gateway_headers(ctx: RequestContext) -> dict[str, str]:
    """x-request-id, x-gateway-attempts and (once an attempt was made) x-gateway-provider: the last one
    tried, i.e. the one that answered."""
    headers = {"x-request-id": ctx.request_id, "x-gateway-attempts": str(ctx.attempts)}
    if ctx.provider is not None:
        headers["x-gateway-provider"] = ctx.provider
    return headers


def raw_gateway_headers(ctx: RequestContext) -> list[tuple[bytes, bytes]]:
    """`gateway_headers` as ASGI header pairs, built straight (a stream's head needs no dict)."""
    headers = [(b"x-request-id", ctx.request_id.encode()), (b"x-gateway-attempts", b"%d" % ctx.attempts)]
    if ctx.provider is not None:
        headers.append((b"x-gateway-provider", ctx.provider.encode()))
    return headers


async def notify(observers: list[RequestObserver], record: RequestRecord) -> None:
    for observer in observers:
        try:
            await observer.request_finished(record)
        except Exception:  # an observer must never break the request it observes
            logger.exception("request observer %r failed", observer)
