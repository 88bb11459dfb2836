"""The runtime snapshot requests are served from, and the one reference a reload swaps.

A request reads `RuntimeHolder.current` once and keeps that snapshot to its end, so a reload never changes
the table under a request in flight.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.config.models import GatewayConfig
from gateway.providers.base import Provider
from gateway.providers.registry import ProviderRegistry
from gateway.resilience.dispatch import Dispatcher
from gateway.resilience.health import HealthRegistry
from gateway.routing.table import RoutingTable


@dataclass(frozen=True, slots=True)
class Runtime:
    config: GatewayConfig
    table: RoutingTable
    registry: ProviderRegistry
    dispatcher: Dispatcher
    loaded_at: float = field(default_factory=time.time)


def build_runtime(config: GatewayConfig, previous: Runtime | None = None) -> tuple[Runtime, list[Provider]]:
    """A new snapshot for `config`, keeping unchanged providers of `previous`; returns the retired ones."""
    registry, retired = ProviderRegistry.build(config.providers, previous.registry if previous else None)
    # Health state (breaker, checks, latency) follows its provider object: kept exactly when the pool is.
    health, _ = HealthRegistry.build(registry, previous.dispatcher.health if previous else None)
    runtime = Runtime(config, RoutingTable(config), registry, Dispatcher(registry, health))
    return runtime, retired


class RuntimeHolder:
    __slots__ = ("current",)

    def __init__(self, runtime: Runtime) -> None:
        self.current = runtime

    def swap(self, runtime: Runtime) -> Runtime:
        previous, self.current = self.current, runtime
        return previous
