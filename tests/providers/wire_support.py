"""Raw upstream answers replayed over a real loopback socket to the H1 client, in pieces.

`exchange()` sends one request through an `H1Transport` to a server that answers with exactly the given
bytes (written piece by piece, each piece its own read on our side), and reports what the client made of
them: status, headers, decoded body, whether the connection went back to the pool, or the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import httpx

from gateway.config.models import PoolLimits
from gateway.providers.h1 import H1Transport
from gateway.providers.transport import WireRequest, WireTimeouts
from tests.support.raw_upstream import Upstream, read_head


@dataclass(frozen=True)
class Outcome:
    """What the client made of an answer: `error` is None when it was read to its end."""

    status: int | None = None
    headers: dict[str, str] | None = None
    body: bytes | None = None
    reused: bool | None = None
    error: httpx.HTTPError | None = None


def pieces(raw: bytes, *cuts: int) -> list[bytes]:
    """`raw` cut at the given offsets (negative ones from the end), in order, without empty pieces."""
    offsets = sorted({cut % len(raw) if cut < 0 else min(cut, len(raw)) for cut in cuts} | {0, len(raw)})
    return [raw[start:end] for start, end in pairwise(offsets) if end > start]


def bytewise(raw: bytes) -> list[bytes]:
    return [raw[index : index + 1] for index in range(len(raw))]


async def exchange(
    answer: Sequence[bytes],
    *,
    close_after: bool = False,
    method: str = "POST",
    read_timeout: float = 2.0,
    settle: float = 0.0,
) -> Outcome:
    """One request to a server that writes `answer` (piece by piece) and then closes the connection
    (`close_after`) or waits for the next request on it. Whether the connection was kept is looked at
    `settle` seconds after the answer was read (bytes the upstream sends after it take a moment)."""

    async def replay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader) if method != "HEAD" else await reader.readuntil(b"\r\n\r\n")
        for piece in answer:
            writer.write(piece)
            await writer.drain()
            if len(answer) > 1:
                await asyncio.sleep(0.001)  # each piece its own read on the client's side
        if close_after:
            raise ConnectionError  # the Upstream's handler closes the connection

    async with Upstream(replay) as up:
        transport = H1Transport(PoolLimits())
        try:
            request = WireRequest(method, up.url, [], b"{}", WireTimeouts(connect=2, read=read_timeout))
            response = await transport.send(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            await asyncio.sleep(settle)
            reused = transport.pool_state().idle == 1
            return Outcome(response.status_code, dict(response.headers), body, reused)
        except httpx.HTTPError as error:
            return Outcome(error=error, reused=transport.pool_state().idle == 1)
        finally:
            await transport.aclose()


def run(answer: Sequence[bytes], **options: object) -> Outcome:
    return asyncio.run(asyncio.wait_for(exchange(answer, **options), 10))  # type: ignore[arg-type]
