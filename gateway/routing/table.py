"""The routing table: client-facing model name -> route.

Exact names and aliases are one dict lookup. Globs (`deepseek-*`) are tried from the most specific
(longest literal text, then fewest wildcards) to the least, ties in declaration order; their answers are
memoised so a glob-routed model costs one dict lookup from its second request on.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Literal

from gateway.config.models import GatewayConfig, RouteConfig

MatchKind = Literal["exact", "alias", "pattern"]
_MEMO_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: RouteConfig
    kind: MatchKind
    model: str  # the model name the client asked for

    def describe(self) -> str:
        if self.kind == "exact":
            return f"exact name {self.route.model!r}"
        if self.kind == "alias":
            return f"alias {self.model!r} of {self.route.model!r}"
        return f"pattern {self.route.model!r}"


def pattern_specificity(pattern: str) -> tuple[int, int]:
    literal = len(re.sub(r"\[[^\]]*\]|[*?]", "", pattern))
    wildcards = pattern.count("*") + pattern.count("?") + pattern.count("[")
    return (-literal, wildcards)


class RoutingTable:
    __slots__ = ("_exact", "_memo", "_patterns", "config")

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._exact: dict[str, RouteMatch] = {}
        patterns: list[tuple[tuple[int, int], int, re.Pattern[str], RouteConfig]] = []
        for order, route in enumerate(config.routes):
            if route.is_pattern:
                regex = re.compile(fnmatch.translate(route.model))
                patterns.append((pattern_specificity(route.model), order, regex, route))
            else:
                self._exact.setdefault(route.model, RouteMatch(route, "exact", route.model))
            for alias in route.aliases:
                self._exact.setdefault(alias, RouteMatch(route, "alias", alias))
        patterns.sort(key=lambda item: (item[0], item[1]))
        self._patterns = [(regex, route) for _, _, regex, route in patterns]
        self._memo: dict[str, RouteMatch | None] = {}

    def resolve(self, model: str) -> RouteMatch | None:
        match = self._exact.get(model)
        if match is not None:
            return match
        try:
            return self._memo[model]
        except KeyError:
            pass
        found = None
        for regex, route in self._patterns:
            if regex.match(model):
                found = RouteMatch(route, "pattern", model)
                break
        if len(self._memo) < _MEMO_LIMIT:
            self._memo[model] = found
        return found

    def model_names(self) -> list[str]:
        """Concrete model names clients can ask for: exact names and aliases, then the `listed_models` of
        glob routes (each only if this route is the one that answers it: a listed name never lies)."""
        names = list(self._exact)
        seen = set(names)
        for route in self.config.routes:
            for name in route.listed_models:
                match = self.resolve(name)
                if name not in seen and match is not None and match.route is route:
                    names.append(name)
                    seen.add(name)
        return names

    @property
    def routes(self) -> tuple[RouteConfig, ...]:
        return self.config.routes
