"""A provider's own model list (`GET /models`), fetched on demand and kept for a while.

Only `GET /v1/models` asks, for routes with `discover_models`: never on a request's path. One fetch at a
time per provider (a burst of listings shares it); a failed fetch is remembered for `RETRY_AFTER`
seconds, so a provider that is down costs each listing nothing but the names it cannot give.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import orjson

from gateway.errors import GatewayError

logger = logging.getLogger("gateway.providers")

FETCH_TIMEOUT = 3.0  # seconds a listing waits for a provider's answer
RETRY_AFTER = 30.0  # seconds before a provider that failed is asked again
MAX_NAMES = 10_000  # names kept from one answer: a listing stays small whatever the upstream sends

Fetch = Callable[[], Awaitable[tuple[int, bytes]]]


class ModelListCache:
    """The model names of one provider, with the time they were fetched."""

    __slots__ = ("_failed_at", "_fetch", "_fetched_at", "_names", "_pending", "name")

    def __init__(self, name: str, fetch: Fetch) -> None:
        self.name = name
        self._fetch = fetch
        self._names: tuple[str, ...] = ()
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._pending: asyncio.Task[None] | None = None

    async def names(self, ttl: float) -> tuple[str, ...]:
        """The names, fetched again when older than `ttl` seconds (the last good ones while that fails)."""
        now = time.monotonic()
        fresh = self._fetched_at is not None and now - self._fetched_at < ttl
        resting = self._failed_at is not None and now - self._failed_at < RETRY_AFTER
        if fresh or resting:
            return self._names
        if self._pending is None:
            self._pending = asyncio.create_task(self._refresh())
            self._pending.add_done_callback(self._forget)
        # Shielded: a listing that gives up (its client left, or the wait ran out) leaves the fetch,
        # itself bounded by FETCH_TIMEOUT, to the others; this one shows what is known.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._pending), FETCH_TIMEOUT)
        return self._names

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._pending = None

    async def _refresh(self) -> None:
        try:
            async with asyncio.timeout(FETCH_TIMEOUT):
                status, content = await self._fetch()
            names = model_ids(status, content)
        except (GatewayError, TimeoutError, ValueError) as exc:
            self._failed_at = time.monotonic()
            logger.warning(
                "provider %s: model list unavailable (%s); asked again in %.0fs", self.name, exc, RETRY_AFTER
            )
            return
        self._names, self._fetched_at, self._failed_at = names, time.monotonic(), None

    async def aclose(self) -> None:
        pending = self._pending
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


def model_ids(status: int, content: bytes) -> tuple[str, ...]:
    """The `data[].id` of an OpenAI (or Anthropic) model list; ValueError for anything else."""
    if status != 200:
        raise ValueError(f"status {status}")
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ValueError("the answer is not JSON") from exc
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ValueError("the answer has no `data` list")
    ids = (entry.get("id") for entry in data[:MAX_NAMES] if isinstance(entry, dict))
    return tuple(dict.fromkeys(name for name in ids if isinstance(name, str) and name))
