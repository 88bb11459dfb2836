"""Judge recorded requests under a config and say what would change: the core of `gateway replay`.

Each logged request is decided by `decision.ConfigJudge` (route, targets, key, allowlist). Its limits are
re-simulated over the log's timestamps with the gateway's own in-memory limiter (`LocalLimiter`, on a
replay clock): a request is admitted at its arrival (logged end minus duration) and spends its logged
tokens at its end. The log is in order of ends, so admissions and spends are put back in time order
through a heap that holds the last `REORDER_SECONDS` of requests (a longer request is judged a little
late). The cost is recomputed from the logged usage at the config's prices, for the target that would
answer: the first one, or the one that answered in the log when it failed over (or the route picks per
request) and is still a target.

The old side is what the log says happened (`logged_verdict`), or a baseline config judged the same way.
Nothing is sent anywhere.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from gateway.access.local_limiter import LocalLimiter
from gateway.config.prices import format_cost
from gateway.decision import ConfigJudge, Decision, TargetPlan
from gateway.replay_log import LoggedRequest

ChangeKind = Literal["route", "first_target", "access", "limit", "cost"]
CHANGE_KINDS: tuple[ChangeKind, ...] = ("route", "first_target", "access", "limit", "cost")
REORDER_SECONDS = 60.0
_DENIED = {
    "missing_key": "denied (401 missing_api_key)",
    "unknown_key": "denied (401 invalid_api_key)",
    "model_not_allowed": "denied (403 model_not_allowed)",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one side did (the log) or would do (a config) with one request."""

    route: str | None  # None: no route serves the model in its API (404)
    first_choices: frozenset[str]  # labels of the targets it goes to first; empty: not known
    access: str | None  # "allowed" or "denied (...)"; None: not judged (no route, or no key logged)
    limited: str | None  # None: admitted (or not reached); else which limit refused it
    cost: int | None  # nano-units; None: not priced
    cost_known: bool  # the request ran and its usage is known on this side
    from_log: bool = False


@dataclass(frozen=True, slots=True)
class ChangedRequest:
    request: LoggedRequest
    changes: dict[ChangeKind, tuple[str, str]]  # kind -> (old, new), as shown


class ReplayClock:
    """The limiter's clock: the time of the request being judged."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ConfigSide:
    """One config's verdicts over a log, with its own limit windows."""

    __slots__ = ("clock", "judge", "limiter")

    def __init__(self, judge: ConfigJudge) -> None:
        self.judge = judge
        self.clock = ReplayClock()
        self.limiter = LocalLimiter(self.clock)

    def verdict(self, request: LoggedRequest) -> tuple[Verdict, int]:
        """The verdict, and the tokens to spend at the request's end (0: none)."""
        # A logged 404 carries no key (the key is recorded once routed): its key is not judged.
        key_known = request.key is not None or request.route is not None
        decision = self.judge.decide(request.model, request.api, request.key, key_known=key_known)
        choices = frozenset(target.label for target in decision.first_choices)
        if decision.outcome in ("no_route", "api_not_served"):
            return Verdict(None, choices, None, None, None, False), 0
        access = "allowed" if decision.admitted else _DENIED.get(decision.outcome, decision.outcome)
        route = decision.route
        if not decision.admitted:  # refused: it goes to no target
            return Verdict(route, frozenset(), access if key_known else None, None, None, False), 0
        limited = None
        limits = decision.limits
        if limits is not None and limits.any and request.key is not None:
            self.clock.now = request.arrived
            admission = self.limiter.admit(request.key, limits)
            limited = None if admission.allowed else f"limited ({admission.exceeded})"
        usage = request.usage
        ran = limited is None and usage is not None
        cost = None
        if ran and usage is not None:
            price = self.judge.price(_answering(decision, request))
            cost = None if price is None else price.cost(usage)
        spend = request.tokens if ran and limits is not None and limits.counts_tokens else 0
        choices = choices if limited is None else frozenset()
        return Verdict(route, choices, access if key_known else None, limited, cost, ran), spend

    def spend(self, key: str, tokens: int, at: float) -> None:
        self.limiter.spend(key, tokens, at)


def _answering(decision: Decision, request: LoggedRequest) -> TargetPlan:
    """The target whose price applies: the first, unless the log's answer came from another one that
    is still a target (a failover, or a route that picks its first target per request)."""
    first = decision.targets[0]
    if request.failovers or len(decision.first_choices) > 1:
        return next((t for t in decision.targets if t.provider == request.provider), first)
    return first


def logged_verdict(request: LoggedRequest) -> Verdict:
    """What the log says happened. The first target is known when the answer came without failover."""
    if request.route is None:
        return Verdict(None, frozenset(), None, None, None, False, from_log=True)
    first: frozenset[str] = frozenset()
    if request.provider is not None and not request.failovers:
        first = frozenset({f"{request.provider}/{request.upstream_model or request.model}"})
    if request.status == 403 and request.error == "model_not_allowed":
        return Verdict(request.route, first, _DENIED["model_not_allowed"], None, None, False, True)
    # The gateway's own 429 comes before dispatch: no provider; an upstream's 429 names one.
    limited = "limited" if request.status == 429 and request.provider is None else None
    known = request.usage is not None and limited is None
    return Verdict(request.route, first, "allowed", limited, request.cost, known, from_log=True)


def compare(old: Verdict, new: Verdict) -> dict[ChangeKind, tuple[str, str]]:
    changes: dict[ChangeKind, tuple[str, str]] = {}
    if old.route != new.route:
        changes["route"] = (_route(old.route), _route(new.route))
    if old.first_choices and new.first_choices:
        moved = (
            not old.first_choices & new.first_choices
            if old.from_log
            else old.first_choices != new.first_choices
        )
        if moved:
            changes["first_target"] = (_choices(old.first_choices), _choices(new.first_choices))
    if old.access is not None and new.access is not None and old.access != new.access:
        changes["access"] = (old.access, new.access)
    if old.access == new.access == "allowed" and (old.limited is None) != (new.limited is None):
        changes["limit"] = (old.limited or "admitted", new.limited or "admitted")
    if old.cost_known and new.cost_known and old.cost != new.cost:
        changes["cost"] = (_cost(old.cost), _cost(new.cost))
    return changes


def replay(
    requests: Iterable[LoggedRequest], new: ConfigSide, old: ConfigSide | None = None
) -> Iterator[ChangedRequest]:
    """The requests whose verdict differs between `old` (default: the log) and `new`, in arrival order."""
    sides = (new,) if old is None else (new, old)
    # (time, 0 = admit | 1 = spend, sequence, request, side index, tokens)
    events: list[tuple[float, int, int, LoggedRequest, int, int]] = []
    for sequence, request in enumerate(requests):
        heapq.heappush(events, (request.arrived, 0, sequence, request, 0, 0))
        horizon = request.ended - REORDER_SECONDS
        while events and events[0][0] <= horizon:
            yield from _handle(heapq.heappop(events), events, sides, old is None)
    while events:
        yield from _handle(heapq.heappop(events), events, sides, old is None)


def _handle(
    event: tuple[float, int, int, LoggedRequest, int, int],
    events: list[tuple[float, int, int, LoggedRequest, int, int]],
    sides: tuple[ConfigSide, ...],
    against_log: bool,
) -> Iterator[ChangedRequest]:
    at, kind, sequence, request, index, tokens = event
    if kind == 1:
        assert request.key is not None  # only keyed requests spend
        sides[index].spend(request.key, tokens, at)
        return
    verdicts = []
    for number, side in enumerate(sides):
        verdict, spend = side.verdict(request)
        verdicts.append(verdict)
        if spend:
            heapq.heappush(events, (request.ended, 1, sequence, request, number, spend))
    old = logged_verdict(request) if against_log else verdicts[1]
    changes = compare(old, verdicts[0])
    if changes:
        yield ChangedRequest(request, changes)


def _route(route: str | None) -> str:
    return "no route (404)" if route is None else route


def _choices(labels: frozenset[str]) -> str:
    return " | ".join(sorted(labels))


def _cost(nano: int | None) -> str:
    return "unpriced" if nano is None else format_cost(nano)
