"""Failover strategies: the order in which one request tries a route's targets.

Every strategy returns all targets (the first is the pick, the rest are the failover order), so the
attempt loop is the same for each. `ordered` returns the prepared tuple itself: no work per request.

    ordered        by `priority` (ties keep list order)
    weighted       the first target drawn at random by `weight` among the usable ones, then by priority
    round_robin    rotate the starting target on every request
    least_latency  lowest moving-average latency first; unmeasured targets first so they get measured
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from gateway.config.models import Strategy


class Candidate(Protocol):
    @property
    def weight(self) -> float: ...

    @property
    def latency(self) -> float | None: ...

    def usable(self, now: float) -> bool: ...


C = TypeVar("C", bound=Candidate)


def weighted_index(weights: Sequence[float], rng: random.Random) -> int:
    """An index drawn with probability proportional to its weight (all zero: the first)."""
    total = sum(weights)
    if total <= 0:
        return 0
    point = rng.random() * total
    for index, weight in enumerate(weights):
        point -= weight
        if point < 0:
            return index
    return len(weights) - 1  # float rounding on the last step


class TargetOrder(Generic[C]):
    """The per-route picker; holds the round-robin position and the random source."""

    __slots__ = ("_counter", "_order", "rng", "strategy", "targets")

    def __init__(self, strategy: Strategy, targets: Sequence[C], rng: random.Random | None = None) -> None:
        self.strategy = strategy
        self.targets: tuple[C, ...] = tuple(targets)
        self.rng = rng or random.Random()
        self._counter = itertools.count()
        single = len(self.targets) <= 1
        orders: dict[str, Callable[[float], Sequence[C]]] = {
            "ordered": self._ordered,
            "weighted": self._weighted,
            "round_robin": self._round_robin,
            "least_latency": self._least_latency,
        }
        self._order = self._ordered if single else orders[strategy]

    def __call__(self, now: float) -> Sequence[C]:
        return self._order(now)

    def _ordered(self, now: float) -> Sequence[C]:
        return self.targets

    def _weighted(self, now: float) -> Sequence[C]:
        targets = self.targets
        usable = [target for target in targets if target.usable(now)]
        if not usable:
            return targets  # panic mode tries them all in order
        pick = usable[weighted_index([target.weight for target in usable], self.rng)]
        return [pick, *(target for target in targets if target is not pick)]

    def _round_robin(self, now: float) -> Sequence[C]:
        targets = self.targets
        start = next(self._counter) % len(targets)
        return targets[start:] + targets[:start]

    def _least_latency(self, now: float) -> Sequence[C]:
        return sorted(self.targets, key=_latency_key)


def _latency_key(target: Candidate) -> float:
    latency = target.latency
    return -1.0 if latency is None else latency
