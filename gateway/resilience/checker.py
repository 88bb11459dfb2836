"""Active health checks: one background task per provider probing `health_check.path` every `interval`.

The app's lifespan owns the one `HealthChecker`: `sync(health_registry)` after the runtime is built (and
after every reload) starts probes for new providers and stops those of removed or changed ones; `aclose()`
on shutdown cancels every task and waits for them. Tasks are tracked as uvicorn tracks its connections.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from gateway.errors import GatewayError
from gateway.resilience.health import HealthRegistry, ProviderHealth

logger = logging.getLogger("gateway.health")


async def probe_once(health: ProviderHealth) -> bool:
    """Run one probe of `health.provider` and record it; returns whether it passed."""
    provider = health.provider
    check = provider.config.health_check
    started = time.perf_counter()
    error: str | None = None
    try:
        status = await provider.probe()
        if status >= 400:
            error = f"probe {check.method} {check.path} answered HTTP {status}"
    except GatewayError as exc:
        error = exc.message
    except Exception as exc:  # a probe must never kill its loop; the reason shows on /health
        logger.exception("health probe of provider %s failed unexpectedly", provider.name)
        error = f"{type(exc).__name__}: {exc}"
    latency = time.perf_counter() - started
    was = health.check_status
    health.record_check(error is None, latency, error, (check.healthy_threshold, check.unhealthy_threshold))
    if health.check_status != was:
        level = logging.WARNING if health.check_status == "unhealthy" else logging.INFO
        logger.log(level, "provider %s is now %s%s", provider.name, health.check_status,
                   f": {error}" if error else "")  # fmt: skip
    return error is None


class HealthChecker:
    __slots__ = ("_closed", "_tasks")

    def __init__(self) -> None:
        self._tasks: dict[ProviderHealth, asyncio.Task[None]] = {}
        self._closed = False

    def sync(self, registry: HealthRegistry) -> None:
        """Probe exactly the providers of `registry` that have checks enabled: start what is new, stop what
        is gone. Synchronous, so a reload can call it right after the swap; stopped probes finish in the
        background and `aclose()` waits for them."""
        if self._closed:
            return
        wanted = {
            health
            for health in registry
            if health.provider.available and health.provider.config.health_check.enabled
        }
        for health in [h for h in self._tasks if h not in wanted]:
            self._tasks[health].cancel()
        for health in wanted:
            if health not in self._tasks:
                task = asyncio.get_running_loop().create_task(
                    self._run(health), name=f"health-check:{health.name}"
                )
                self._tasks[health] = task
                task.add_done_callback(functools.partial(self._forget, health))  # the callback gets the task

    def _forget(self, health: ProviderHealth, task: asyncio.Task[None]) -> None:
        if self._tasks.get(health) is task:
            del self._tasks[health]

    @property
    def watched(self) -> list[str]:
        """Names of the providers being probed (for tests and logs)."""
        return sorted(health.name for health, task in self._tasks.items() if not task.cancelling())

    async def _run(self, health: ProviderHealth) -> None:
        interval = health.provider.config.health_check.interval
        while True:
            await probe_once(health)
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        """Stop every probe and wait for them to end (shutdown)."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
