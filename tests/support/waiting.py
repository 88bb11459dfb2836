"""Wait for a condition instead of sleeping a fixed time before an assert (a busy machine is slow)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

DEFAULT_TIMEOUT = 5.0  # seconds: far above what the condition needs on a quiet machine
POLL_INTERVAL = 0.01


async def eventually(
    predicate: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT, message: str = ""
) -> None:
    """Poll `predicate` on the running loop until true; raise AssertionError after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        await asyncio.sleep(POLL_INTERVAL)
