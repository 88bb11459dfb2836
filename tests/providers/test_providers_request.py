"""The upstream request a provider builds: URL, headers and timeouts, as the transport receives them."""

from __future__ import annotations

import httpx
import pytest

from gateway.config.models import ProviderConfig, Timeouts
from gateway.errors import ProviderUnavailable
from gateway.providers.base import Provider
from gateway.providers.httpx_adapter import HttpxTransport
from gateway.providers.transport import WireRequest, WireTimeouts
from gateway.translate.openai_errors import read_openai_error

OK = b'{"id": "x", "object": "chat.completion", "choices": []}'


def provider_seeing(seen: list[httpx.Request], **config: object) -> Provider:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=OK)

    cfg = ProviderConfig(name="up", type="openai", base_url="https://up.test/v1/", **config)  # type: ignore[arg-type]
    return Provider(cfg, HttpxTransport(httpx.MockTransport(handler)))


async def send(provider: Provider, request: WireRequest) -> None:
    try:
        await provider.complete(request, read_openai_error)
    finally:
        await provider.aclose()


async def test_request_carries_the_provider_headers_the_client_defaults_and_the_request_id() -> None:
    seen: list[httpx.Request] = []
    provider = provider_seeing(seen, api_key="sk-1", headers={"x-team": "a", "User-Agent": "ours"})
    await send(provider, provider.build_request(b'{"model":"m"}', "req-1"))

    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", "https://up.test/v1/chat/completions")
    assert request.content == b'{"model":"m"}'
    headers = request.headers
    assert headers["authorization"] == "Bearer sk-1"
    assert headers["x-request-id"] == "req-1"
    assert headers["x-team"] == "a"
    assert headers["user-agent"] == "ours"  # a provider's header wins over ours, whatever its case
    assert headers["accept-encoding"] == "gzip, deflate"  # what the H1 client decodes
    assert (headers["host"], headers["content-length"]) == ("up.test", "13")
    names = [name for name, _ in headers.multi_items()]
    assert len(names) == len(set(names)), names


def test_an_attempts_traceparent_replaces_a_configured_one_and_only_when_tracing() -> None:
    provider = provider_seeing([], headers={"traceparent": "00-configured", "x-team": "a"})
    untraced = provider.build_request(b"{}", "r")
    assert ("traceparent", "00-configured") in untraced.headers
    trace = (("traceparent", "00-ours-01"), ("tracestate", "v=1"))
    traced = provider.build_request(b"{}", "r", trace=trace, forwarded=(("anthropic-beta", "b"),))
    assert [value for name, value in traced.headers if name == "traceparent"] == ["00-ours-01"]
    assert ("tracestate", "v=1") in traced.headers and ("x-team", "a") in traced.headers
    assert ("anthropic-beta", "b") in traced.headers and ("x-request-id", "r") in traced.headers


async def test_no_request_id_no_header_and_timeouts_from_the_provider_or_the_route() -> None:
    seen: list[httpx.Request] = []
    provider = provider_seeing(seen, timeouts=Timeouts(connect=3, read=7, write=9))
    default = provider.build_request(b"{}", "")
    routed = provider.build_request(b"{}", "r", Timeouts(connect=1, read=2, write=4))

    assert "x-request-id" not in dict(default.headers)
    # The pool wait is the provider's pool.acquire_timeout (1 s by default), whatever the route says.
    assert default.timeouts == WireTimeouts(connect=3, read=7, write=9, pool=1)
    assert routed.timeouts == WireTimeouts(connect=1, read=2, write=4, pool=1)
    again = provider.build_request(b"{}", "r", Timeouts(connect=1, read=2, write=4))
    assert again.timeouts is routed.timeouts  # made once per distinct value
    await send(provider, routed)
    assert seen[0].headers["x-request-id"] == "r"
    assert seen[0].extensions["timeout"] == {"connect": 1, "read": 2, "write": 4, "pool": 1}


async def test_an_upstream_cookie_is_not_sent_back_with_later_requests() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=OK, headers={"set-cookie": "session=caller-a; Path=/"})

    cfg = ProviderConfig(name="up", type="openai", base_url="https://up.test/v1")
    provider = Provider(cfg, HttpxTransport(httpx.MockTransport(handler)))

    async def scenario() -> None:
        try:
            await provider.complete(provider.build_request(b"{}", "a"), read_openai_error)
            await provider.complete(provider.build_request(b"{}", "b"), read_openai_error)
        finally:
            await provider.aclose()

    await scenario()
    assert [request.headers.get("cookie") for request in seen] == [None, None]


async def test_a_closed_provider_refuses_to_send() -> None:
    provider = provider_seeing([])
    request = provider.build_request(b"{}", "r")
    await provider.aclose()
    with pytest.raises(ProviderUnavailable):
        await send(provider, request)
