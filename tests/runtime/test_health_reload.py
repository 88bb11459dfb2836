"""Health state across hot reloads: an unchanged provider keeps its breaker and check history, a changed
one starts fresh, and a removed one is no longer probed (the lifespan wires the checker to `on_swap`)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from gateway.config import load_config
from gateway.resilience.checker import HealthChecker
from gateway.resilience.health import ProviderHealth
from gateway.runtime.inflight import InflightTracker
from gateway.runtime.reload import ReloadManager
from gateway.runtime.snapshot import RuntimeHolder, build_runtime
from tests.support.resilience_support import provider, route
from tests.support.simulator import ProviderSimulator
from tests.support.waiting import eventually

FAST_CHECKS = {"interval": 0.05, "timeout": 1}


def write_config(directory: Path, providers: dict[str, object], routes: dict[str, object]) -> None:
    (directory / "routes.yaml").write_text(json.dumps({"providers": providers, "routes": routes}))


def models_requests(sim: ProviderSimulator) -> int:
    return sum(1 for request in sim.requests if request.path.endswith("/models"))


async def test_reload_keeps_unchanged_health_and_stops_probing_removed_providers(tmp_path: Path) -> None:
    with ProviderSimulator() as sim_a, ProviderSimulator() as sim_b:
        a = provider(sim_a.base_url, health_check=FAST_CHECKS)
        b = provider(sim_b.base_url, health_check=FAST_CHECKS)

        async def scenario() -> None:
            write_config(tmp_path, {"a": a, "b": b}, {"r": route("a", "b")})
            loaded = load_config([tmp_path], {})
            assert loaded.config is not None, loaded.diagnostics
            holder = RuntimeHolder(build_runtime(loaded.config)[0])
            manager = ReloadManager(holder, [tmp_path], InflightTracker())
            checker = HealthChecker()
            checker.sync(holder.current.dispatcher.health)
            manager.on_swap.append(lambda _, new: checker.sync(new.dispatcher.health))
            assert checker.watched == ["a", "b"]
            await eventually(
                lambda: getattr(holder.current.dispatcher.health.get("a"), "check_status", None) == "healthy"
            )
            state_a = holder.current.dispatcher.health.get("a")
            assert isinstance(state_a, ProviderHealth) and state_a.check_status == "healthy"
            state_a.breaker.record_failure(0.0, "boom")

            # b removed, a unchanged: a keeps its state (and its probe task); b is no longer probed.
            write_config(tmp_path, {"a": a}, {"r": route("a")})
            assert await manager.reload("test") == "applied"
            assert holder.current.dispatcher.health.get("a") is state_a
            assert state_a.breaker.failures == 1 and state_a.breaker.last_error == "boom"
            assert checker.watched == ["a"]
            await asyncio.sleep(0.05)
            probes_b = models_requests(sim_b)
            await asyncio.sleep(0.2)
            assert models_requests(sim_b) == probes_b

            # a changed: a fresh state, probed from now on; the old one is left alone.
            write_config(tmp_path, {"a": {**a, "timeouts": {"connect": 5}}}, {"r": route("a")})
            assert await manager.reload("test") == "applied"
            fresh = holder.current.dispatcher.health.get("a")
            assert fresh is not None and fresh is not state_a and fresh.breaker.failures == 0
            await asyncio.sleep(0.05)
            old_checked = state_a.checked_at
            await asyncio.sleep(0.2)
            assert state_a.checked_at == old_checked
            assert fresh.checked_at is not None and fresh.check_status == "healthy"

            await manager.aclose()
            await checker.aclose()
            assert checker.watched == []
            await holder.current.registry.aclose()

        await scenario()
