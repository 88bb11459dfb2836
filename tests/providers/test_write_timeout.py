"""`timeouts.write`: a request the upstream stops reading fails with a write timeout, instead of waiting
forever (or for the read timeout) with the request half sent."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config.models import ProviderConfig, Timeouts
from gateway.errors import UpstreamTimeout
from gateway.providers.registry import new_provider
from gateway.translate.openai_errors import read_openai_error


async def test_an_upstream_that_stops_reading_is_a_write_timeout() -> None:
    accepted = asyncio.Event()
    done = asyncio.Event()

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        try:
            await done.wait()  # reads nothing meanwhile: our socket buffers fill up
        finally:
            writer.close()

    server = await asyncio.start_server(never_reads, "127.0.0.1", 0, limit=1024)
    port = server.sockets[0].getsockname()[1]
    provider = new_provider(
        ProviderConfig(
            name="up",
            type="openai",
            base_url=f"http://127.0.0.1:{port}/v1",
            timeouts=Timeouts(write=0.3, read=20),
        )
    )
    body = b'{"model":"m","messages":[{"role":"user","content":"' + b"x" * (32 * 1024 * 1024) + b'"}]}'
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(15):
            with pytest.raises(UpstreamTimeout, match="write timeout"):
                await provider.complete(provider.build_request(body, "r"), read_openai_error)
    finally:
        await provider.aclose()
        done.set()
        server.close()
        await server.wait_closed()
    assert accepted.is_set()
    assert loop.time() - started < 10  # the write timeout, not the read timeout's 20 s
