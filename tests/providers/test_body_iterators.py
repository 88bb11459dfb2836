"""The upstream body iterators: plain objects, not async generators.

An iterator ends for good as a generator would: at the end of the body, once it raised, once closed.
One left unfinished (a relay stops at `[DONE]`) must cost no finalizer task when it is dropped.
"""

from __future__ import annotations

import asyncio
import gc

import httpx
import pytest

from gateway.config.models import ProviderConfig
from gateway.errors import (
    UpstreamReadError,
    UpstreamTimeout,
)
from gateway.providers.base import Provider
from gateway.providers.registry import new_provider
from gateway.resilience.deadline import DeadlineByteStream
from gateway.translate.openai_errors import read_openai_error
from tests.support.raw_upstream import Handler, Upstream, read_head

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def sends(*pieces: bytes, then_drop: bool = False) -> Handler:
    """An upstream that sends `pieces` after a chunked head, then drops the connection or stays silent."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(HEAD + b"".join(pieces))
        await writer.drain()
        if then_drop:
            raise ConnectionError
        await asyncio.sleep(10)

    return handler


def provider_for(url: str) -> Provider:
    base = url.removesuffix("/chat/completions")
    return new_provider(ProviderConfig(name="up", type="openai", base_url=base))


async def test_a_stream_ends_for_good_at_its_end() -> None:
    async with asyncio.timeout(5), Upstream(sends(b"d\r\ndata: first\n\n\r\n0\r\n\r\n")) as up:
        provider = provider_for(up.url)
        try:
            stream = await provider.open_stream(provider.build_request(b"{}", "r"), read_openai_error)
            assert [chunk async for chunk in stream] == [b"data: first\n\n"]
            assert [chunk async for chunk in stream] == []
            await stream.aclose()
        finally:
            await provider.aclose()


async def test_a_dropped_stream_raises_ours_once_then_ends() -> None:
    async with asyncio.timeout(5), Upstream(sends(b"d\r\ndata: first\n\n\r\n", then_drop=True)) as up:
        provider = provider_for(up.url)
        try:
            stream = await provider.open_stream(provider.build_request(b"{}", "r"), read_openai_error)
            assert await anext(stream) == b"data: first\n\n"
            with pytest.raises(UpstreamReadError) as caught:
                await anext(stream)
            assert isinstance(caught.value.__cause__, httpx.HTTPError)
            with pytest.raises(StopAsyncIteration):
                await anext(stream)
            await stream.aclose()
        finally:
            await provider.aclose()


async def test_a_closed_body_iterator_ends_and_the_answer_still_closes_its_connection() -> None:
    async with asyncio.timeout(5), Upstream(sends(b"d\r\ndata: first\n\n\r\n")) as up:
        provider = provider_for(up.url)
        try:
            assert provider.transport is not None
            response = await provider.transport.send(provider.build_request(b"{}", "r"))
            chunks = response.aiter_bytes()
            assert await anext(chunks) == b"data: first\n\n"
            await chunks.aclose()  # type: ignore[attr-defined]
            with pytest.raises(StopAsyncIteration):
                await anext(chunks)
            await response.aclose()
            assert provider.pool_state().in_use == 0
        finally:
            await provider.aclose()


async def test_an_abandoned_stream_leaves_no_finalizer_task() -> None:
    async with asyncio.timeout(5), Upstream(sends(b"d\r\ndata: first\n\n\r\n")) as up:
        provider = provider_for(up.url)
        try:
            loop = asyncio.get_running_loop()
            stream = await provider.open_stream(provider.build_request(b"{}", "r"), read_openai_error)
            deadline = DeadlineByteStream(stream, loop.time() + 5, "too slow")
            assert await anext(deadline) == b"data: first\n\n"  # then the relay stops reading
            await deadline.aclose()
            tasks = asyncio.all_tasks()
            del stream, deadline
            gc.collect()
            await asyncio.sleep(0)
            assert asyncio.all_tasks() == tasks
        finally:
            await provider.aclose()


async def test_a_deadline_stream_times_out_once_then_ends() -> None:
    async with asyncio.timeout(5), Upstream(sends(b"d\r\ndata: first\n\n\r\n")) as up:
        provider = provider_for(up.url)
        try:
            loop = asyncio.get_running_loop()
            stream = await provider.open_stream(provider.build_request(b"{}", "r"), read_openai_error)
            deadline = DeadlineByteStream(stream, loop.time() + 0.2, "too slow")
            assert await anext(deadline) == b"data: first\n\n"
            with pytest.raises(UpstreamTimeout, match="too slow"):
                await anext(deadline)  # the upstream stays silent
            with pytest.raises(StopAsyncIteration):
                await anext(deadline)
            await deadline.aclose()
        finally:
            await provider.aclose()
