"""The SSRF guard at connect time (our H1 client): a name that resolves into a link-local or metadata range
is refused after resolution, with a clear upstream connect error, unless `allow_private_network`.

The name is made to resolve there by patching the running loop's `getaddrinfo` (in process, no
/etc/hosts): the gateway's own `resolve()` and the guard run as in production. To show that the opt-in
really connects to the refused address, `connect_address` sends 169.254.169.254 to a test server on
127.0.0.1 (nothing answers at the real address here)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from gateway.config.models import ProviderConfig
from gateway.errors import UpstreamAddressRefused, UpstreamConnectError
from gateway.providers.base import Provider
from gateway.providers.h1 import connect
from gateway.providers.registry import new_provider
from gateway.translate.openai_errors import read_openai_error
from tests.support.raw_upstream import OK_BODY, Upstream, answer, read_head

METADATA = "169.254.169.254"


def provider(base_url: str, **config: Any) -> Provider:
    return new_provider(
        ProviderConfig(name="up", type="openai", base_url=base_url, api_key="sk-up", **config)
    )


async def complete(provider: Provider) -> bytes:
    try:
        reply = await provider.complete(provider.build_request(b'{"model":"m"}', "r"), read_openai_error)
        return reply.content
    finally:
        await provider.aclose()


async def ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_head(reader)
    writer.write(answer(OK_BODY))
    await writer.drain()


def resolve_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> list[str]:
    """Make every name resolve to `addresses` (in order); returns the names looked up."""
    looked_up: list[str] = []
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        looked_up.append(host)
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in addresses
        ]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return looked_up


def divert_metadata_to(monkeypatch: pytest.MonkeyPatch, port: int) -> list[str]:
    """Connections to 169.254.169.254 go to 127.0.0.1:`port` instead; returns the addresses connected."""
    real = connect.connect_address
    connected: list[str] = []

    async def connect_address(info: connect.AddressInfo) -> socket.socket:
        connected.append(info[4][0])
        if info[4][0] == METADATA:
            info = (socket.AF_INET, info[1], info[2], info[3], ("127.0.0.1", port))
        return await real(info)

    monkeypatch.setattr(connect, "connect_address", connect_address)
    return connected


async def test_a_name_resolving_to_the_metadata_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async with asyncio.timeout(10), Upstream(ok) as upstream:
        port = int(upstream.url.split(":")[2].split("/")[0])
        looked_up = resolve_to(monkeypatch, METADATA)
        connected = divert_metadata_to(monkeypatch, port)
        with pytest.raises(UpstreamAddressRefused) as refused:
            await complete(provider(f"http://sneaky.test:{port}/v1"))
    assert looked_up == ["sneaky.test"]
    assert connected == [] and upstream.connections == 0  # refused before any connect
    error = refused.value
    assert error.status_code == 502 and error.code == "upstream_address_refused"
    assert isinstance(error, UpstreamConnectError) and error.target_misconfigured
    assert f"sneaky.test resolves to a refused address ({METADATA} is in 169.254.0.0/16" in error.message
    assert "allow_private_network: true" in error.message


async def test_the_opt_in_connects_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    async with asyncio.timeout(10), Upstream(ok) as upstream:
        port = int(upstream.url.split(":")[2].split("/")[0])
        resolve_to(monkeypatch, METADATA)
        connected = divert_metadata_to(monkeypatch, port)
        content = await complete(provider(f"http://sneaky.test:{port}/v1", allow_private_network=True))
    assert content == OK_BODY
    assert connected == [METADATA] and upstream.connections == 1


async def test_only_the_refused_addresses_of_a_name_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    async with asyncio.timeout(10), Upstream(ok) as upstream:
        port = int(upstream.url.split(":")[2].split("/")[0])
        resolve_to(monkeypatch, "fe80::1", METADATA, "127.0.0.1")
        connected = divert_metadata_to(monkeypatch, port)
        content = await complete(provider(f"http://mixed.test:{port}/v1"))
    assert content == OK_BODY
    assert connected == ["127.0.0.1"]


@pytest.mark.parametrize("host", [METADATA, "[::ffff:169.254.169.254]", "100.100.100.200"])
async def test_an_ip_literal_is_refused_without_a_lookup(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    # Built without the config loader (which refuses it earlier): the connect guard holds on its own.
    looked_up = resolve_to(monkeypatch, "127.0.0.1")
    async with asyncio.timeout(10):
        with pytest.raises(UpstreamAddressRefused):
            await complete(provider(f"http://{host}:9/v1"))
    assert looked_up == []
