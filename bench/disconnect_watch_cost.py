"""What watching for a departed client costs a non-streaming request (`api/respond.py`).

A request that waits for its upstream answer must notice a client that leaves, to cancel the upstream
request. Three ways, each measured in one process on the event loop around an answer that arrives at once,
against no watching at all: a watcher task from the start (what streams do), a timer per request that
starts the watcher after `LATE_WATCH_DELAY`, and a registration with one sweeper that starts watchers for
requests still waiting after that delay (`streaming/late_watch.py`, what non-streaming requests do):

    .venv/bin/python bench/disconnect_watch_cost.py          # ~15 s
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

if __package__ in (None, ""):  # run as a script: make `bench` and `gateway` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.api.state import LATE_WATCH_DELAY
from gateway.streaming.asgi_streamer import DisconnectWatch
from gateway.streaming.late_watch import LateWatches

ROUNDS, PER_ROUND = 7, 20_000
LATE = LateWatches(LATE_WATCH_DELAY)


async def receive_forever() -> dict[str, object]:
    await asyncio.Event().wait()  # the client stays: no disconnect message ever
    return {"type": "http.disconnect"}


async def answer() -> bytes:
    await asyncio.sleep(0)  # the upstream answer: one trip through the loop
    return b"{}"


async def bare() -> None:
    await answer()


async def registered() -> None:
    watch = DisconnectWatch(receive_forever, started=False)
    LATE.add(watch)
    await answer()
    LATE.discard(watch)
    if watch.watching:
        await watch.close()
    else:
        watch.active = False


async def timer() -> None:
    watch = DisconnectWatch(receive_forever, started=False)
    handle = asyncio.get_running_loop().call_later(LATE_WATCH_DELAY, watch.start)
    await answer()
    handle.cancel()
    await watch.close()


async def immediate() -> None:
    watch = DisconnectWatch(receive_forever)
    await answer()
    await watch.close()


async def per_request(handler: Callable[[], Awaitable[None]]) -> float:
    """Microseconds per request, each run in its own task as a server runs it (median of ROUNDS)."""
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(PER_ROUND):
            await asyncio.create_task(handler())
        times.append((time.perf_counter() - started) / PER_ROUND * 1e6)
    return statistics.median(times)


async def main() -> None:
    LATE.start()
    base = await per_request(bare)
    handlers = (
        ("registered with the sweeper (non-streaming requests)", registered),
        ("a timer per request", timer),
        ("a watcher task at once (streams)", immediate),
    )
    for name, handler in handlers:
        cost = await per_request(handler) - base
        print(f"{name}: +{cost:.2f} us per request (a bare request: {base:.2f} us)")
    await LATE.aclose()


if __name__ == "__main__":
    uvloop.run(main())
