"""The runtime snapshot requests are served from, and the one reference a reload swaps.

A request reads `RuntimeHolder.current` once and keeps that snapshot to its end, so a reload never changes
the table under a request in flight.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.config.models import GatewayConfig
from gateway.observe.config_version import HeaderPair, version_header
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
    # `x-gateway-config-version` of every answer served from this snapshot, encoded once here.
    version_header: HeaderPair = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "version_header", version_header(self.config.version))


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
