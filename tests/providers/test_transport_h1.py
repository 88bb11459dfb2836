"""The H1 transport (our HTTP/1.1 client) behind the providers' transport seam, against real loopback servers.

Each test starts a small asyncio server that answers (or misbehaves) as the test needs, then checks what
reaches the gateway: the right error of our tree, bytes as they arrive, connections pooled and released.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import socket
import ssl
import subprocess
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.config.models import PoolLimits, ProviderConfig, Timeouts, TlsOptions
from gateway.errors import (
    UpstreamCapacity,
    UpstreamConnectError,
    UpstreamError,
    UpstreamReadError,
    UpstreamStatusError,
    UpstreamTimeout,
)
from gateway.providers.base import Provider, UpstreamReply
from gateway.providers.error_mapping import map_upstream_errors
from gateway.providers.h1 import H1Response, H1Transport
from gateway.providers.registry import new_provider
from gateway.providers.transport import PoolState, WireRequest, WireTimeouts
from gateway.translate.openai_errors import read_openai_error
from tests.support.raw_upstream import OK_BODY, Handler, Upstream, answer, read_head
from tests.support.waiting import eventually


async def answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_head(reader)
    writer.write(answer(OK_BODY))


@dataclass
class Answer:
    status_code: int
    headers: Mapping[str, str]
    content: bytes


class H1Client:
    """The H1 transport with the small client face these tests need: a request read whole."""

    def __init__(self, transport: H1Transport, timeouts: WireTimeouts) -> None:
        self.transport = transport
        self.timeouts = timeouts

    async def __aenter__(self) -> H1Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def open(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, content: bytes = b"",
        timeouts: WireTimeouts | None = None,
    ) -> H1Response:  # fmt: skip
        request = WireRequest(method, url, list((headers or {}).items()), content, timeouts or self.timeouts)
        return await self.transport.send(request)

    async def request(self, method: str, url: str, **kwargs: object) -> Answer:
        response = await self.open(method, url, **kwargs)  # type: ignore[arg-type]
        try:
            return Answer(response.status_code, response.headers, await response.aread())
        finally:
            await response.aclose()

    def pool_state(self) -> PoolState:
        return self.transport.pool_state()

    async def aclose(self) -> None:
        await self.transport.aclose()


def client(
    *, read: float | None = 5.0, connect: float | None = 5.0, pool: PoolLimits | None = None
) -> H1Client:
    timeouts = WireTimeouts.from_config(Timeouts(connect=connect, read=read))
    return H1Client(H1Transport(pool or PoolLimits()), timeouts)


async def post(http: H1Client, url: str, **kwargs: object) -> Answer:
    with map_upstream_errors("up"):
        return await http.request("POST", url, content=b'{"model":"m"}', **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_real_provider_sends_over_the_h1_transport() -> None:
    provider = provider_for("http://up.test/v1/chat/completions")
    assert isinstance(provider.transport, H1Transport)


async def test_answer_headers_and_body_pass_and_the_connection_is_kept_alive() -> None:
    async with Upstream(answer_ok) as up:
        http = client()
        try:
            first = await post(http, up.url)
            second = await post(http, up.url)
            assert http.pool_state() == PoolState(in_use=0, idle=1)
        finally:
            await http.aclose()
        assert (first.status_code, first.content, second.content) == (200, OK_BODY, OK_BODY)
        assert up.connections == 1


async def test_request_reaches_the_upstream_with_each_header_once() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_head(reader))
        writer.write(answer(OK_BODY))

    async def scenario() -> None:
        async with Upstream(record) as up, client() as http:
            await post(http, up.url, headers={"authorization": "Bearer k", "x-request-id": "r1"})

    await scenario()
    head, body = seen[0].split(b"\r\n\r\n", 1)
    lines = [line.lower() for line in head.split(b"\r\n")]
    assert lines[0] == b"post /v1/chat/completions http/1.1"
    names = [line.split(b":", 1)[0] for line in lines[1:]]
    assert sorted(set(names)) == sorted(names), names  # no header twice
    assert {b"host", b"content-length", b"authorization", b"x-request-id"} <= set(names)
    assert b"authorization: bearer k" in lines
    assert body == b'{"model":"m"}'


async def test_a_gzipped_answer_is_decoded() -> None:
    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer(gzip.compress(OK_BODY), b"content-encoding: gzip"))

    async def scenario() -> bytes:
        async with Upstream(gzipped) as up, client() as http:
            return (await post(http, up.url)).content

    assert await scenario() == OK_BODY


async def test_connection_refused_is_a_connect_error() -> None:
    async def scenario() -> None:
        async with client() as http:
            await post(http, f"http://127.0.0.1:{free_port()}/v1/chat/completions")

    with pytest.raises(UpstreamConnectError, match="could not connect to provider 'up'"):
        await scenario()


async def drop_before_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_head(reader)
    writer.close()
    raise ConnectionError


async def drop_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_head(reader)
    writer.write(answer(OK_BODY)[:-4])
    await writer.drain()
    raise ConnectionError


@pytest.mark.parametrize("upstream", [drop_before_answering, drop_mid_body])
async def test_a_drop_after_the_request_was_sent_is_a_read_error(upstream: Handler) -> None:
    async def scenario() -> None:
        async with Upstream(upstream) as up, client() as http:
            await post(http, up.url)

    with pytest.raises(UpstreamReadError):
        await scenario()


async def test_the_read_timeout_of_the_request_applies() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(10)

    async def scenario() -> None:
        async with Upstream(silent) as up, client(read=30) as http:
            await post(http, up.url, timeouts=WireTimeouts(connect=5, read=0.2, pool=5))

    with pytest.raises(UpstreamTimeout, match=r"read timeout"):
        await asyncio.wait_for(scenario(), 5)


async def test_waiting_for_a_pool_slot_is_bounded_by_the_acquire_timeout() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(1)
        writer.write(answer(OK_BODY))

    async with asyncio.timeout(5):
        async with Upstream(slow) as up:
            async with client(pool=PoolLimits(max_connections=1, acquire_timeout=0.2)) as http:
                first = asyncio.create_task(post(http, up.url))
                await eventually(lambda: http.pool_state().in_use == 1)
                loop = asyncio.get_running_loop()
                started = loop.time()
                try:
                    with pytest.raises(UpstreamCapacity, match=r"all 1 connections .* in use"):
                        await post(http, up.url)
                    assert 0.2 <= loop.time() - started < 0.9  # the bounded wait, not the answer's 1 s
                finally:
                    assert (await first).content == OK_BODY
            assert up.connections == 1  # the limit held: the second request never connected


async def test_max_keepalive_zero_closes_each_connection() -> None:
    async def scenario() -> int:
        async with Upstream(answer_ok) as up:
            async with client(pool=PoolLimits(max_keepalive_connections=0)) as http:
                await post(http, up.url)
                await post(http, up.url)
                assert http.pool_state() == PoolState(in_use=0, idle=0)
            return up.connections

    assert await scenario() == 2


def event_stream(next_event: asyncio.Event, then: bytes) -> Handler:
    """An upstream that sends one event, waits for `next_event`, sends `then` and never ends (the client
    abandons the stream)."""

    async def events(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        writer.write(b"d\r\ndata: first\n\n\r\n")
        await writer.drain()
        await next_event.wait()
        writer.write(then)
        await writer.drain()
        await asyncio.sleep(10)

    return events


async def test_stream_bytes_arrive_as_sent_and_an_abandoned_stream_closes_its_connection() -> None:
    next_event = asyncio.Event()
    events = event_stream(next_event, b"e\r\ndata: second\n\n\r\n")

    async with asyncio.timeout(5):
        async with Upstream(events) as up:
            http = client()
            try:
                with map_upstream_errors("up"):
                    response = await http.open("POST", up.url, content=b"{}")
                    chunks = aiter(response.aiter_bytes())
                    assert await anext(chunks) == b"data: first\n\n"  # before the upstream sent more
                    next_event.set()
                    assert await anext(chunks) == b"data: second\n\n"
                transport = http.transport
                assert transport.pool_state() == PoolState(in_use=1, idle=0)
                await response.aclose()
                assert transport.pool_state() == PoolState(in_use=0, idle=0)  # closed, not pooled
            finally:
                await http.aclose()


async def test_every_transport_error_is_one_of_ours() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        raise ConnectionError

    async def scenario() -> None:
        async with Upstream(garbage) as up, client() as http:
            await post(http, up.url)

    with pytest.raises(UpstreamError):
        await scenario()


# Under `Provider`: requests built once, errors read by the attempt's translator.


def provider_for(url: str, **config: object) -> Provider:
    base = url.removesuffix("/chat/completions")
    return new_provider(ProviderConfig(name="up", type="openai", base_url=base, **config))  # type: ignore[arg-type]


async def test_provider_complete_sends_the_request_and_decodes_the_answer() -> None:
    seen: list[bytes] = []

    async def gzipped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_head(reader))
        writer.write(
            answer(gzip.compress(OK_BODY), b"content-encoding: gzip", b"x-ratelimit-limit-requests: 9")
        )

    async def scenario() -> UpstreamReply:
        async with Upstream(gzipped) as up:
            provider = provider_for(up.url, api_key="sk-1")
            try:
                reply = await provider.complete(
                    provider.build_request(b'{"model":"m"}', "req-1"), read_openai_error
                )
                assert provider.pool_state() == PoolState(in_use=0, idle=1)
                return reply
            finally:
                await provider.aclose()

    reply = await scenario()
    assert (reply.status_code, reply.content) == (200, OK_BODY)
    assert reply.headers == {"x-ratelimit-limit-requests": "9"}
    head, body = seen[0].split(b"\r\n\r\n", 1)
    lines = [line.lower() for line in head.split(b"\r\n")]
    names = [line.split(b":", 1)[0] for line in lines[1:]]
    assert sorted(set(names)) == sorted(names), names
    assert {b"authorization: bearer sk-1", b"x-request-id: req-1", b"content-length: 13"} <= set(lines)
    assert body == b'{"model":"m"}'


async def test_provider_errors_on_the_fast_path_are_ours() -> None:
    async def error(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        body = b'{"error":{"message":"slow down"}}'
        writer.write(answer(body, b"retry-after: 3").replace(b"200 OK", b"429 Too Many Requests", 1))

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        raise ConnectionError

    async def complete(url: str) -> UpstreamReply:
        provider = provider_for(url)
        try:
            return await provider.complete(provider.build_request(b"{}", "r"), read_openai_error)
        finally:
            await provider.aclose()

    async with asyncio.timeout(10):
        async with Upstream(error) as up:
            with pytest.raises(UpstreamStatusError) as status:
                await complete(up.url)
            assert (status.value.status_code, status.value.headers) == (429, {"retry-after": "3"})
        async with Upstream(drop) as up:
            with pytest.raises(UpstreamReadError):
                await complete(up.url)
        with pytest.raises(UpstreamConnectError):
            await complete(f"http://127.0.0.1:{free_port()}/v1/chat/completions")


async def test_provider_stream_passes_reads_through_and_closes_an_abandoned_connection() -> None:
    next_event = asyncio.Event()
    events = event_stream(next_event, b"")  # silent after the first event

    async with asyncio.timeout(5):
        async with Upstream(events) as up:
            provider = provider_for(up.url)
            try:
                stream = await provider.open_stream(provider.build_request(b"{}", "r"), read_openai_error)
                chunks = aiter(stream)
                assert await anext(chunks) == b"data: first\n\n"
                assert provider.pool_state() == PoolState(in_use=1, idle=0)
                await stream.aclose()
                assert provider.pool_state() == PoolState(in_use=0, idle=0)
                next_event.set()
            finally:
                await provider.aclose()


# What only our own client has to get right: body framing, pool bookkeeping, header safety.


async def test_a_body_delimited_by_the_end_of_the_connection_is_read_whole() -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + OK_BODY)
        await writer.drain()
        raise ConnectionError  # the handler's `finally` closes the connection: the end of the body

    async with asyncio.timeout(5):
        async with Upstream(until_close) as up, client() as http:
            response = await post(http, up.url)
            assert response.content == OK_BODY
            assert http.pool_state() == PoolState(in_use=0, idle=0)


async def test_a_chunked_answer_read_to_its_end_keeps_the_connection() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        writer.write(b'5\r\n{"ok"\r\n6\r\n:true}\r\n0\r\n\r\n')

    async with asyncio.timeout(5):
        async with Upstream(chunked) as up, client() as http:
            assert (await post(http, up.url)).content == OK_BODY
            assert (await post(http, up.url)).content == OK_BODY
            assert up.connections == 1


async def test_an_idle_connection_the_upstream_closed_is_not_reused() -> None:
    async def answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer(OK_BODY))  # says nothing of closing: a keep-alive answer
        await writer.drain()
        raise ConnectionError  # then the upstream's idle timeout closes it

    async with asyncio.timeout(5):
        async with Upstream(answer_then_close) as up, client() as http:
            assert (await post(http, up.url)).content == OK_BODY
            # the close reaches the gateway's loop
            await eventually(lambda: http.pool_state() == PoolState(in_use=0, idle=0))
            assert (await post(http, up.url)).content == OK_BODY
            assert up.connections == 2


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async with asyncio.timeout(5):
        async with Upstream(answer_ok) as up:
            http = client()
            try:
                with pytest.raises(httpx.LocalProtocolError):
                    await http.open("POST", up.url, headers={"x-a": "b\r\nx-smuggled: 1"}, content=b"{}")
                with pytest.raises(httpx.LocalProtocolError):
                    await http.open("POST", up.url, headers={"x-a": "b\nx-smuggled: 1"}, content=b"{}")
            finally:
                await http.aclose()
            assert up.connections == 0


async def test_a_head_probe_does_not_wait_for_the_announced_body() -> None:
    async def head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n")  # HEAD: the length, no body

    async def scenario() -> int:
        async with Upstream(head) as up, client(read=3) as http:
            return (await http.request("HEAD", up.url)).status_code

    assert await asyncio.wait_for(scenario(), 2) == 200


async def test_idle_connections_expire_and_beyond_max_keepalive_are_closed() -> None:
    async def slow_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(0.05)
        writer.write(answer(OK_BODY))

    async with asyncio.timeout(5):
        limits = PoolLimits(max_keepalive_connections=1, keepalive_expiry=0.2)
        async with Upstream(slow_ok) as up, client(pool=limits) as http:
            transport = http.transport
            await asyncio.gather(*(post(http, up.url) for _ in range(3)))
            assert up.connections == 3
            assert transport.pool_state() == PoolState(in_use=0, idle=1)  # two closed on release
            await post(http, up.url)
            assert up.connections == 3  # the kept one was reused
            await asyncio.sleep(0.3)
            await post(http, up.url)
            assert up.connections == 4  # expired: a new connection


async def test_idle_connections_left_from_a_burst_are_closed_when_they_expire() -> None:
    async def slow_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(0.05)
        writer.write(answer(OK_BODY))

    async with asyncio.timeout(5):
        async with Upstream(slow_ok) as up, client(pool=PoolLimits(keepalive_expiry=0.2)) as http:
            transport = http.transport
            await asyncio.gather(*(post(http, up.url) for _ in range(4)))  # a burst: four connections
            assert transport.pool_state() == PoolState(in_use=0, idle=4)
            await asyncio.sleep(0.2)  # the keepalive expiry passes; no request takes them again
            await eventually(lambda: transport.pool_state() == PoolState(in_use=0, idle=0))
            await eventually(lambda: len(up._handlers) == 0)  # the upstream saw them closed


async def test_requests_over_the_connection_limit_wait_for_a_free_connection() -> None:
    async def slow_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(0.05)
        writer.write(answer(OK_BODY))

    async with asyncio.timeout(5):
        async with Upstream(slow_ok) as up, client(pool=PoolLimits(max_connections=2)) as http:
            responses = await asyncio.gather(*(post(http, up.url) for _ in range(6)))
            assert [response.content for response in responses] == [OK_BODY] * 6
            assert up.connections == 2


async def test_a_slow_reader_gets_a_large_stream_whole_and_in_order() -> None:
    piece = bytes(range(256)) * 256  # 64 KiB

    async def large(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (len(piece) * 32))
        for _ in range(32):  # 2 MiB, far past the point where reading the socket pauses
            writer.write(piece)
            await writer.drain()

    async def scenario() -> bytes:
        async with Upstream(large) as up:
            transport = H1Transport(PoolLimits())
            try:
                response = await transport.send(WireRequest("POST", up.url, [], b"{}", WireTimeouts(read=5)))
                received = bytearray()
                async for chunk in response.aiter_bytes():
                    received += chunk
                    await asyncio.sleep(0.01)  # a slow client downstream
                await response.aclose()
                assert transport.pool_state() == PoolState(in_use=0, idle=1)
                return bytes(received)
            finally:
                await transport.aclose()

    assert await asyncio.wait_for(scenario(), 10) == piece * 32


async def test_a_raw_deflate_answer_is_decoded_on_the_fast_path() -> None:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # deflate without the zlib wrapper, as some send it
    deflated = compressor.compress(OK_BODY) + compressor.flush()

    async def deflate(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(answer(deflated, b"content-encoding: deflate"))

    async def scenario() -> bytes:
        async with Upstream(deflate) as up:
            provider = provider_for(up.url)
            try:
                return (
                    await provider.complete(provider.build_request(b"{}", "r"), read_openai_error)
                ).content
            finally:
                await provider.aclose()

    assert await asyncio.wait_for(scenario(), 5) == OK_BODY


# TLS (every real provider is https): verified with the CA bundle, kept alive like plain connections.


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class TlsUpstream(Upstream):
    def __init__(self, handler: Handler, cert: Path, key: Path) -> None:
        super().__init__(handler)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)

    async def __aenter__(self) -> TlsUpstream:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=self.context)
        return self

    @property
    def url(self) -> str:
        return super().url.replace("http://", "https://", 1)


async def test_an_https_upstream_with_an_untrusted_certificate_is_a_connect_error(
    tls_files: tuple[Path, Path],
) -> None:
    async def scenario() -> None:
        async with TlsUpstream(answer_ok, *tls_files) as up, client() as http:
            await post(http, up.url)

    with pytest.raises(UpstreamConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await asyncio.wait_for(scenario(), 5)


async def test_an_https_upstream_answers_over_tls_and_its_connection_is_reused(
    tls_files: tuple[Path, Path],
) -> None:
    cert, _ = tls_files
    async with asyncio.timeout(5):
        async with TlsUpstream(answer_ok, *tls_files) as up:
            provider = provider_for(up.url, tls=TlsOptions(ca_bundle=str(cert)))  # the test's own CA
            try:
                for _ in range(2):
                    reply = await provider.complete(provider.build_request(b"{}", "r"), read_openai_error)
                    assert reply.content == OK_BODY
                assert provider.pool_state() == PoolState(in_use=0, idle=1)
            finally:
                await provider.aclose()
            assert up.connections == 1
