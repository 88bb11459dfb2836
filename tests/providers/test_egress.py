"""Reaching providers the way corporate networks allow: through an egress proxy (CONNECT tunnels for https,
forwarding for http), with TLS options (a private CA, mutual TLS, another server name), and over every
address of a host (Happy Eyeballs). Real loopback servers, certificates made by the test."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.config.models import ProviderConfig, TlsOptions
from gateway.errors import UpstreamConnectError, UpstreamError
from gateway.providers.base import Provider, UpstreamReply
from gateway.providers.h1 import connect
from gateway.providers.h1.connect import Proxy, bypasses_proxy
from gateway.providers.registry import new_provider
from gateway.translate.openai_errors import read_openai_error
from tests.support.egress_proxy import EgressProxy
from tests.support.tls_certs import Certificates, make_certificates

OK = b'{"id":"c","object":"chat.completion","choices":[]}'


class OkUpstream:
    """Answers every request OK (keep-alive), over TLS when given a context; records request heads."""

    def __init__(self, context: Any = None) -> None:
        self.context = context
        self.heads: list[bytes] = []
        self.connections = 0
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> OkUpstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self._tasks:  # connections still open end with the test
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def base_url(self, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.context is not None else "http"
        return f"{scheme}://{host}:{self.port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                length = next((int(line[15:]) for line in lines if line.startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                self.heads.append(head)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                    % (len(OK), OK)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()


@pytest.fixture
def certs(tmp_path: Path) -> Certificates:
    return make_certificates(tmp_path)


def provider(base_url: str, **config: Any) -> Provider:
    return new_provider(
        ProviderConfig(name="up", type="openai", base_url=base_url, api_key="sk-up", **config)
    )


async def complete(provider: Provider, times: int = 1) -> list[UpstreamReply]:
    try:
        return [
            await provider.complete(provider.build_request(b'{"model":"m"}', "r"), read_openai_error)
            for _ in range(times)
        ]
    finally:
        await provider.aclose()


@pytest.fixture
async def tls_upstream(certs: Certificates) -> AsyncIterator[OkUpstream]:
    async with OkUpstream(certs.server_context(require_client=False)) as upstream:
        yield upstream


# The proxy.


async def test_an_https_provider_is_reached_through_a_connect_tunnel(
    certs: Certificates, tls_upstream: OkUpstream
) -> None:
    async with asyncio.timeout(10), EgressProxy(credentials=("team", "p@ss")) as proxy:
        up = provider(
            tls_upstream.base_url(),
            proxy=proxy.url.replace("http://", "http://team:p%40ss@"),
            tls=TlsOptions(ca_bundle=str(certs.ca)),
        )
        replies = await complete(up, times=2)
    assert [reply.content for reply in replies] == [OK, OK]
    assert proxy.log.tunnels == [f"127.0.0.1:{tls_upstream.port}"]  # one tunnel, kept alive for both
    assert proxy.log.authorizations == ["Basic dGVhbTpwQHNz"]
    assert tls_upstream.connections == 1 and len(tls_upstream.heads) == 2
    head = tls_upstream.heads[0].lower()
    assert head.startswith(b"post /v1/chat/completions http/1.1") and b"authorization: bearer sk-up" in head
    assert b"proxy-authorization" not in head  # the credentials went to the proxy only


async def test_an_http_provider_is_reached_through_a_forwarding_proxy() -> None:
    async with asyncio.timeout(10), OkUpstream() as upstream, EgressProxy(credentials=("u", "p")) as proxy:
        replies = await complete(provider(upstream.base_url(), proxy=proxy.url.replace("//", "//u:p@")))
    assert replies[0].content == OK
    assert proxy.log.forwarded == [f"http://127.0.0.1:{upstream.port}/v1/chat/completions"]
    assert proxy.log.authorizations == ["Basic dTpw"]
    assert upstream.heads[0].startswith(b"POST /v1/chat/completions HTTP/1.1")


async def test_a_proxy_that_refuses_the_tunnel_is_a_connect_error(tls_upstream: OkUpstream) -> None:
    async with asyncio.timeout(10), EgressProxy(credentials=("team", "secret")) as proxy:
        with pytest.raises(UpstreamConnectError, match="407") as caught:
            await complete(provider(tls_upstream.base_url(), proxy=proxy.url.replace("//", "//team:wrong@")))
    assert "wrong" not in str(caught.value) and tls_upstream.connections == 0


async def test_the_environment_proxy_is_used_only_when_asked_for_and_no_proxy_bypasses_it(
    certs: Certificates, tls_upstream: OkUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with asyncio.timeout(10), EgressProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        tls = TlsOptions(ca_bundle=str(certs.ca))
        await complete(provider(tls_upstream.base_url(), tls=tls))  # not asked for: direct
        assert proxy.log.tunnels == []
        await complete(provider(tls_upstream.base_url(), tls=tls, proxy="environment"))
        assert proxy.log.tunnels == [f"127.0.0.1:{tls_upstream.port}"]
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        await complete(provider(tls_upstream.base_url(), tls=tls, proxy="environment"))
        assert len(proxy.log.tunnels) == 1  # bypassed


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("api.example.com", "example.com", True),
        ("api.example.com", ".example.com", True),
        ("example.com", ".example.com", True),
        ("badexample.com", "example.com", False),
        ("api.example.com", "other.com, example.com:443", True),
        ("api.deepseek.com", "*", True),
        ("api.deepseek.com", "", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("::1", "[::1]", True),
    ],
)
def test_no_proxy_matching(host: str, no_proxy: str, bypassed: bool) -> None:
    assert bypasses_proxy(host, no_proxy) is bypassed


def test_proxy_credentials_never_show() -> None:
    proxy = Proxy.from_url("http://user:hunter2@proxy.corp:3128")
    assert (proxy.host, proxy.port) == ("proxy.corp", 3128)
    assert "hunter2" not in repr(proxy) and "user" not in repr(proxy)


# TLS options.


async def test_mutual_tls_with_certificates_made_by_the_test(certs: Certificates) -> None:
    async with asyncio.timeout(10), OkUpstream(certs.server_context(require_client=True)) as upstream:
        with_cert = TlsOptions(
            ca_bundle=str(certs.ca), client_cert=str(certs.client_cert), client_key=str(certs.client_key)
        )
        assert (await complete(provider(upstream.base_url(), tls=with_cert)))[0].content == OK
        with pytest.raises(UpstreamError):  # no client certificate: the server ends the handshake
            await complete(provider(upstream.base_url(), tls=TlsOptions(ca_bundle=str(certs.ca))))
    assert len(upstream.heads) == 1


async def test_an_untrusted_certificate_stays_a_connect_error(
    certs: Certificates, tls_upstream: OkUpstream
) -> None:
    async with asyncio.timeout(10):
        with pytest.raises(UpstreamConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await complete(provider(tls_upstream.base_url(), tls=TlsOptions(ca_bundle=str(certs.other_ca))))
        with pytest.raises(UpstreamConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await complete(provider(tls_upstream.base_url()))  # certifi's bundle does not know the test CA
        # Only an explicit verify: false (which validate-config warns about) accepts it.
        replies = await complete(provider(tls_upstream.base_url(), tls=TlsOptions(verify=False)))
    assert replies[0].content == OK


async def test_server_name_is_the_name_sent_and_verified(
    certs: Certificates, tls_upstream: OkUpstream
) -> None:
    async with asyncio.timeout(10):
        named = TlsOptions(ca_bundle=str(certs.ca), server_name="upstream.test")
        assert (await complete(provider(tls_upstream.base_url(), tls=named)))[0].content == OK
        wrong = TlsOptions(ca_bundle=str(certs.ca), server_name="other.test")
        with pytest.raises(UpstreamConnectError, match=r"CERTIFICATE_VERIFY_FAILED|match"):
            await complete(provider(tls_upstream.base_url(), tls=wrong))


# Every address of a host.


async def test_a_silent_first_address_does_not_hold_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first address never answers; the next one is tried after the attempt delay, and wins."""
    real_connect = connect.connect_address

    async def resolve(host: str, port: int) -> list[connect.AddressInfo]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),  # stands for a black hole
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    async def connect_address(info: connect.AddressInfo) -> socket.socket:
        if info[4][0] == "127.0.0.2":
            await asyncio.sleep(30)
        return await real_connect(info)

    monkeypatch.setattr(connect, "resolve", resolve)
    monkeypatch.setattr(connect, "connect_address", connect_address)
    async with asyncio.timeout(10), OkUpstream() as upstream:
        loop = asyncio.get_running_loop()
        started = loop.time()
        replies = await complete(provider(upstream.base_url("upstream.test")))
        elapsed = loop.time() - started
    assert replies[0].content == OK
    assert connect.ATTEMPT_DELAY <= elapsed < 5  # one stagger, not the silent address's 30 s
    assert upstream.heads[0].lower().count(b"host: upstream.test:") == 1


async def test_every_address_refusing_names_each_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()

    async def resolve(host: str, port: int) -> list[connect.AddressInfo]:
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(connect, "resolve", resolve)
    async with asyncio.timeout(10):
        with pytest.raises(UpstreamConnectError, match="could not connect"):
            await complete(provider(f"http://upstream.test:{port}/v1"))


def test_addresses_are_tried_with_families_interleaved() -> None:
    v4 = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (f"10.0.0.{i}", 1)) for i in range(3)]
    v6 = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (f"fd00::{i}", 1, 0, 0)) for i in range(2)]
    ordered = connect._interleave([*v6, *v4])
    assert [info[4][0] for info in ordered] == ["fd00::0", "10.0.0.0", "fd00::1", "10.0.0.1", "10.0.0.2"]
