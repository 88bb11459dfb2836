"""Admitting an inbound request, for every inbound API: request id, key, body, route, limits.

An endpoint module brings what is its own (its API's name, how to parse its body) and gets back the runtime
to dispatch on, with the `Exchange` filled in for the recording. What the body means upstream is the
translators' business (`gateway.translate`), per attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from gateway.access.budgets import BudgetHold, max_output_tokens, maximum_cost
from gateway.access.controller import AccessController
from gateway.access.keys import GatewayKey
from gateway.api.body import read_body
from gateway.api.input_limits import check_counts
from gateway.api.recording import Exchange, most_prompt_tokens
from gateway.api.state import GatewayState
from gateway.config.apis import LONG_TO_SHORT
from gateway.config.models import ApiName
from gateway.config.prices import PriceTable
from gateway.errors import ModelNotFound, Unauthorized
from gateway.observe.raw_headers import header_value
from gateway.observe.request_id import accept_request_id, bind_request_id
from gateway.observe.trace_sampling import UnsampledTrace
from gateway.resilience.dispatch import RequestContext
from gateway.routing.table import RouteMatch
from gateway.runtime.snapshot import Runtime

# The raw body -> a dict with a non-empty string `model`; raises `InvalidRequest` otherwise.
BodyParser = Callable[[bytes], dict[str, Any]]


def open_exchange(request: Request, state: GatewayState) -> Exchange:
    """The exchange of a request that just arrived; its id goes on every log line of the request."""
    started = time.perf_counter()
    scope = request.scope
    request_id = accept_request_id(header_value(scope["headers"], b"x-request-id"))
    request.state.request_id = request_id  # for the error handlers (api/errors.py)
    bind_request_id(request_id)  # every log line of this request carries it (observe/logging.py)
    running = state.started
    runtime = None if running is None else running.holder.current  # admit() takes it again
    tracing = state.tracing
    if tracing is None:
        return Exchange(request_id, started, state.observers, runtime=runtime)
    trace = tracing.request(scope["method"], scope["path"], scope["headers"])
    if isinstance(trace, UnsampledTrace):  # no span: only a traceparent goes upstream
        return Exchange(request_id, started, state.observers, upstream_trace=trace, runtime=runtime)
    return Exchange(request_id, started, state.observers, trace=trace, upstream_trace=trace, runtime=runtime)


async def admit(
    request: Request,
    state: GatewayState,
    exchange: Exchange,
    api: ApiName,
    parse: BodyParser,
    forwarded: tuple[tuple[str, str], ...] = (),
    *,
    metered: bool = True,
) -> Runtime:
    """Authenticate (401, before the body is read), parse (400, or 413 past `max_body_bytes` while the
    body is read: api/input_limits.py), route (404), admit the key (403, 429).

    Fills in `exchange.model`, `exchange.ctx` and `exchange.limit_headers`; returns the runtime snapshot
    the request is served from to its end. `forwarded` are the client's headers that go on unchanged to
    an upstream of the same API. `metered=False` (count_tokens: it costs nothing) skips budgets.
    """
    started = state.running()
    exchange.api = LONG_TO_SHORT[api]
    access = started.access  # None: no keys enforced
    try:
        key = access.authenticate(request.headers) if access is not None else None
    except Unauthorized:
        await _discard_chunked_body(request)  # 413 instead when it is over the limit
        raise
    raw = await read_body(request.receive)
    body = parse(raw)
    check_counts(body, api, state.edge.limits)
    model: str = body["model"]
    exchange.model = model
    runtime = exchange.runtime = started.holder.current
    match = runtime.table.resolve(model)
    if match is None:
        raise ModelNotFound(
            f"The model `{model}` does not exist or you do not have access to it.", param="model"
        )
    if api not in match.route.apis:
        raise ModelNotFound(
            f"The model `{model}` is not served on the {LONG_TO_SHORT[api]} API (route "
            f"{match.route.name!r} serves {', '.join(LONG_TO_SHORT[a] for a in match.route.apis)}).",
            param="model",
        )
    ctx = RequestContext(
        request_id=exchange.request_id,
        match=match,
        body=body,
        stream=body.get("stream") is True,
        api=api,
        started=exchange.started,
        forwarded=forwarded,
        raw=raw,
        trace=exchange.upstream_trace,
    )
    exchange.ctx = ctx
    exchange.prices = runtime.config.prices
    if access is not None and key is not None:
        ctx.key_name = key.name
        hold = None
        if key.limits.budgets and metered:  # keys without budgets pay this one attribute check
            hold = budget_hold(key, body, api, match, runtime.config.prices, access)
            exchange.hold, exchange.access = hold, access  # settled on every exit (api/recording.py)
        exchange.limit_headers = await access.admit(key, match, hold)
    return runtime


def budget_hold(
    key: GatewayKey,
    body: dict[str, Any],
    api: ApiName,
    match: RouteMatch,
    prices: PriceTable | None,
    access: AccessController,
) -> BudgetHold:
    """The claim of a request of a key with budgets: its maximum cost at the dearest target of its route
    (prompt estimate + max output tokens), or unpriced. Costs the prompt estimate (a pass over the text)."""
    budgets = key.limits.budgets
    if prices is None:  # the loader refuses budgets without prices:; a hand-built config may not
        return BudgetHold(key.name, budgets, None, "", unpriced="(no prices: section)")
    output = max_output_tokens(body, api, access.settings.budget_default_max_output_tokens)
    amount, unpriced = maximum_cost(prices, match, most_prompt_tokens(body), output)
    return BudgetHold(key.name, budgets, amount, prices.currency, unpriced=unpriced)


async def _discard_chunked_body(request: Request) -> None:
    """An unauthenticated chunked body is read and thrown away, piece by piece, before the 401: so a body
    over `max_body_bytes` gets its 413 with or without a key, and nothing is kept (the read stops at the
    limit plus one piece, `input_limits.py`). A Content-Length body is already judged from the head."""
    if "content-length" in request.headers or "transfer-encoding" not in request.headers:
        return
    async for _ in request.stream():
        pass
