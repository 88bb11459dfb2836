"""`POST /v1/messages` and `/v1/messages/count_tokens`: Anthropic's Messages API, inbound.

Admitted like every API (`api/admit.py`: a gateway key as `x-api-key` or `Authorization: Bearer`), routed by
the same table, answered by `api/respond.py`. What is Messages' own is here: its body checks, the client
headers passed on to a Messages upstream, and `count_tokens`. Errors on these paths are in Anthropic's shape
(`api/errors.py` picks it by path).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from gateway.api.admit import admit, open_exchange
from gateway.api.body import json_object
from gateway.api.recording import gateway_headers
from gateway.api.serve_request import serve_request
from gateway.api.state import gateway_state
from gateway.config.models import ApiName
from gateway.errors import GatewayError, InvalidRequest, UpstreamError
from gateway.resilience.dispatch import RequestContext
from gateway.runtime.snapshot import Runtime
from gateway.translate.anthropic_errors import read_anthropic_error
from gateway.translate.prompt_tokens import count_prompt
from gateway.translate.token_estimate import estimate_input_tokens
from gateway.translate.tokenizer import LazyTokenizer

API: ApiName = "anthropic.messages"
# Client headers a Messages upstream gets as they came; a translated upstream does not speak them.
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def parse_messages_body(raw: bytes) -> dict[str, Any]:
    """The body as a dict, with what Anthropic itself requires checked, in its words."""
    body = json_object(raw)
    _check_common(body)
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequest("max_tokens: Field required", param="max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be a positive integer", param="max_tokens")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean", param="stream")
    return body


def parse_count_tokens_body(raw: bytes) -> dict[str, Any]:
    body = json_object(raw)
    _check_common(body)
    return body


def _check_common(body: dict[str, Any]) -> None:
    model = body.get("model")
    if model is None:
        raise InvalidRequest("model: Field required", param="model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Input should be a non-empty string", param="model")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("messages: Field required", param="messages")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list", param="messages")


def forwarded_headers(request: Request) -> tuple[tuple[str, str], ...]:
    headers = request.headers
    return tuple((name, value) for name in FORWARDED_HEADERS if (value := headers.get(name)) is not None)


async def messages(request: Request) -> ASGIApp:
    return await serve_request(request, API, parse_messages_body, forwarded_headers(request))


async def count_tokens(request: Request) -> Response:
    """Asked of the route's first usable target when it counts natively (Anthropic); otherwise estimated
    here, and the answer says so (`x-gateway-token-count: estimate`)."""
    state = gateway_state(request)
    exchange = open_exchange(request, state)
    try:
        runtime = await admit(
            request, state, exchange, API, parse_count_tokens_body, forwarded_headers(request), metered=False
        )
        ctx = exchange.ctx
        assert ctx is not None
        headers = gateway_headers(ctx)
        content, status = await _count_upstream(runtime, ctx, headers, state.tokenizer)
        if exchange.observers or exchange.trace is not None:
            await exchange.finish(exchange.record(status))
        response = Response(content, status, headers, media_type="application/json")
        response.raw_headers.append(runtime.version_header)
        return response
    except GatewayError as exc:
        await exchange.failed(exc)
        raise
    except Exception as exc:
        raise await exchange.crashed(exc) from None


async def _count_upstream(
    runtime: Runtime, ctx: RequestContext, headers: dict[str, str], tokenizer: LazyTokenizer
) -> tuple[bytes, int]:
    body, raw, forwarded = ctx.body, ctx.raw, ctx.forwarded
    match = runtime.table.resolve(body["model"])
    assert match is not None  # admitted
    for target in match.route.targets:
        provider = runtime.registry.get(target.provider)
        if provider is None or not provider.available:
            continue
        if not (provider.kind.count_tokens and API in provider.apis):
            break  # the first usable target does not count: estimate for it
        model = target.model or match.model
        content = raw if model == body["model"] else orjson.dumps({**body, "model": model})
        wire = provider.build_request(
            content, headers["x-request-id"], api=API, forwarded=forwarded, path_suffix="/count_tokens"
        )

        reply = await provider.complete(wire, _read_error)
        headers["x-gateway-provider"] = provider.name
        return reply.content, reply.status_code
    headers["x-gateway-token-count"] = "estimate"
    return orjson.dumps({"input_tokens": await estimate_count(body, tokenizer)}), 200


async def estimate_count(body: dict[str, Any], lazy: LazyTokenizer) -> int:
    """The prompt's tokens under cl100k (loaded on first need; counted in a worker thread: a long prompt
    takes milliseconds), close for Latin and CJK text alike; by characters when no tokenizer loads."""
    tokenizer = await lazy.get()
    if tokenizer is None:
        return estimate_input_tokens(body)
    return await asyncio.to_thread(count_prompt, tokenizer, body)


def _read_error(status: int, content: bytes, headers: Mapping[str, str], provider: str) -> UpstreamError:
    return read_anthropic_error(status, content, headers, provider, for_messages_client=True)
