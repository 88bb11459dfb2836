"""Checks the schema cannot express: they look across routes and across files, and (`check_access`) at
the keys/auth/settings sections once `${VAR}` is resolved, against what `gateway serve` can use.

Run only on files that passed the schema, so every value has the documented type. Files come in load
order (sorted by name) and routes in file order; "earlier" below means that order, which routing also
uses to break ties between equally specific glob patterns.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .apis import DEFAULT_APIS, LONG_TO_SHORT, SHORT_NAMES, upstream_api
from .diagnostics import Diagnostic, Severity
from .models import (
    DEFAULT_PREFIX,
    DEFAULT_STORE,
    SIMPLE_MODE_KEY_NAME,
    SIMPLE_MODE_VARIABLE,
    STORE_SCHEMES,
    ApiName,
    is_store_url,
    secret_digest,
)
from .sections import SectionPlaces
from .wire_checks import check_wire
from .yaml_source import DocumentPath, SourceFile

_GLOB_CHARACTERS = "*?["
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key"})


@dataclass(frozen=True, slots=True)
class _Place:
    """Where something was written, for messages that name two places."""

    source: SourceFile
    path: DocumentPath
    key: bool = False

    def position(self) -> tuple[int, int]:
        return self.source.position(self.path, key=self.key)

    def __str__(self) -> str:
        line, column = self.position()
        return f"{self.source.path}:{line}:{column}"


def check_semantics(sources: Sequence[SourceFile]) -> list[Diagnostic]:
    """Diagnostics for problems between providers, routes and files."""
    diagnostics: list[Diagnostic] = []
    providers = _unique_names(sources, "providers", "provider", diagnostics)
    routes = _unique_names(sources, "routes", "route", diagnostics)
    for name, place in providers.items():
        diagnostics.extend(_check_provider(name, place))
    for name, place in routes.items():
        diagnostics.extend(_check_targets(name, place, providers))
        diagnostics.extend(_check_route_apis(name, place, providers))
        diagnostics.extend(_check_listed_models(name, place))
    diagnostics.extend(_check_model_names(routes))
    return diagnostics


def _diagnostic(place: _Place, message: str, hint: str, severity: Severity = "error") -> Diagnostic:
    line, column = place.position()
    return Diagnostic(place.source.path, line, column, message, hint=hint, severity=severity, code="semantic")


def _unique_names(
    sources: Sequence[SourceFile], section: str, kind: str, diagnostics: list[Diagnostic]
) -> dict[str, _Place]:
    """The entries of one section over all files; a name defined twice is an error naming both places
    (within one file the YAML loader already refuses duplicate keys)."""
    places: dict[str, _Place] = {}
    for source in sources:
        entries = source.data.get(section) if isinstance(source.data, dict) else None
        for name in entries or {}:
            place = _Place(source, (section, name), key=True)
            first = places.get(name)
            if first is None:
                places[name] = place
                continue
            diagnostics.append(
                _diagnostic(
                    place,
                    f"{kind} {name!r} is defined twice: here and at {first}",
                    f"{kind} names are unique across all route files; rename or remove one of them",
                )
            )
    return places


def _entry(place: _Place) -> dict[str, Any]:
    section, name = place.path
    entry: dict[str, Any] = place.source.data[section][name]
    return entry


def _check_provider(name: str, place: _Place) -> Iterator[Diagnostic]:
    provider = _entry(place)
    if "mock" in provider and provider["type"] != "mock":
        yield _diagnostic(
            _Place(place.source, (*place.path, "mock"), key=True),
            f"mock options are ignored for provider {name!r} of type {provider['type']}",
            "remove the mock section, or set type: mock",
            "warning",
        )
    yield from check_wire(name, provider, place.source, place.path)
    for header, value in (provider.get("headers") or {}).items():
        if header.lower() in _SECRET_HEADERS and "${" not in value:
            yield _diagnostic(
                _Place(place.source, (*place.path, "headers", header)),
                f"header {header!r} of provider {name!r} holds a literal secret",
                "write the secret as a reference, e.g. 'Bearer ${MY_API_KEY}', and set it in the environment",
            )


def _check_targets(name: str, place: _Place, providers: dict[str, _Place]) -> Iterator[Diagnostic]:
    route = _entry(place)
    strategy = route.get("strategy", "ordered")
    targets: list[dict[str, Any]] = route["targets"]
    for index, target in enumerate(targets):
        target_path = (*place.path, "targets", index)
        provider = target["provider"]
        if provider not in providers:
            yield _diagnostic(
                _Place(place.source, (*target_path, "provider")),
                f"route {name!r} targets unknown provider {provider!r}",
                _unknown_provider_hint(provider, sorted(providers)),
            )
        if "weight" in target and strategy != "weighted":
            yield _diagnostic(
                _Place(place.source, (*target_path, "weight"), key=True),
                f"weight is ignored: route {name!r} uses strategy {strategy}",
                "set strategy: weighted to split traffic by weight, or remove the weight",
                "warning",
            )
    if strategy == "weighted" and all(target.get("weight", 1) == 0 for target in targets):
        yield _diagnostic(
            _Place(place.source, (*place.path, "targets"), key=True),
            f"route {name!r} uses strategy weighted but every target has weight 0",
            "give at least one target a weight above 0",
        )


def _check_listed_models(name: str, place: _Place) -> Iterator[Diagnostic]:
    """`listed_models` are names a glob route serves: each must match its glob; `discover_models` asks
    the targets' providers, so it needs a glob and a target that passes the client's name on."""
    route = _entry(place)
    pattern = route.get("model", name)
    for index, listed in enumerate(route.get("listed_models", ())):
        if not fnmatch.fnmatchcase(listed, pattern):
            yield _diagnostic(
                _Place(place.source, (*place.path, "listed_models", index)),
                f"route {name!r} lists model {listed!r}, which its model pattern {pattern!r} does not match",
                "list only names the route's glob matches, or widen the glob",
            )
    if route.get("discover_models", False) is False:
        return
    where = _Place(place.source, (*place.path, "discover_models"), key=True)
    if not any(ch in pattern for ch in "*?["):
        yield _diagnostic(
            where,
            f"route {name!r} asks to discover models, but its model {pattern!r} is not a glob",
            "discover_models is for glob routes such as `yi-*`; an exact route is listed already",
        )
    elif all("model" in target for target in route.get("targets", ())):
        yield _diagnostic(
            where,
            f"route {name!r} asks to discover models, but every target renames the model",
            "only targets without `model:` are asked for their models; remove discover_models",
            "warning",
        )


def _native_apis(provider: dict[str, Any]) -> tuple[ApiName, ...]:
    written = provider.get("apis")
    if written is None:
        return DEFAULT_APIS[provider["type"]]
    return tuple(SHORT_NAMES[short] for short in written)


def _check_route_apis(name: str, place: _Place, providers: dict[str, _Place]) -> Iterator[Diagnostic]:
    """Every API a route serves must reach each of its targets: natively, or through a translator."""
    route = _entry(place)
    if "apis" not in route:
        return  # by default a route serves what all its targets can be reached from
    asked = route["apis"]
    where = _Place(place.source, (*place.path, "apis"), key=True)
    for index, target in enumerate(route["targets"]):
        provider_place = providers.get(target["provider"])
        if provider_place is None:
            continue  # reported by _check_targets
        native = _native_apis(_entry(provider_place))
        for short in asked:
            if upstream_api(SHORT_NAMES[short], native) is None:
                spoken = ", ".join(LONG_TO_SHORT[api] for api in native)
                yield _diagnostic(
                    where,
                    f"route {name!r} serves {short}, but its target {index} (provider "
                    f"{target['provider']!r}, which speaks {spoken}) cannot be reached from {short}",
                    f"remove {short} from the route's apis, or give the provider an API {short} can reach",
                )


def _unknown_provider_hint(provider: str, known: list[str]) -> str:
    guess = difflib.get_close_matches(provider, known, n=1)
    if guess:
        return f"did you mean {guess[0]!r}?"
    if known:
        return "defined providers: " + ", ".join(known)
    return "define the provider under providers: in any route file"


def _check_model_names(routes: dict[str, _Place]) -> Iterator[Diagnostic]:
    """Each exact name (model or alias) belongs to one route, and a glob pattern repeated by a later
    route can never match there."""
    exact: dict[str, tuple[str, _Place]] = {}
    patterns: list[tuple[str, str, _Place]] = []
    for name, place in routes.items():
        route = _entry(place)
        if "model" in route:
            model, model_place = route["model"], _Place(place.source, (*place.path, "model"))
        else:
            model, model_place = name, place
        names = [(model, model_place)] + [
            (alias, _Place(place.source, (*place.path, "aliases", index)))
            for index, alias in enumerate(route.get("aliases", []))
        ]
        for value, value_place in names:
            if any(character in value for character in _GLOB_CHARACTERS):
                yield from _check_pattern(name, value, value_place, patterns)
                patterns.append((value, name, value_place))
                continue
            owner = exact.get(value)
            if owner is None:
                exact[value] = (name, value_place)
                continue
            owner_name, owner_place = owner
            which = "route" if owner_name != name else "this route"
            yield _diagnostic(
                value_place,
                f"model name {value!r} is already served by {which} {owner_name!r} at {owner_place}",
                "each model name or alias belongs to one route; remove the repeated one",
            )


def _check_pattern(
    name: str, pattern: str, place: _Place, earlier: list[tuple[str, str, _Place]]
) -> Iterator[Diagnostic]:
    for other, other_name, other_place in earlier:
        if other == pattern:
            yield _diagnostic(
                place,
                f"pattern {pattern!r} of route {name!r} can never match: route {other_name!r} at "
                f"{other_place} has the same pattern and comes first",
                "remove one of the routes or merge their targets",
            )
            return


def check_access(
    sections: Mapping[str, Any], environ: Mapping[str, str], places: SectionPlaces
) -> list[Diagnostic]:
    """What `gateway serve` could not use in the merged, interpolated keys/auth/settings sections (the
    API_KEY variable included): empty or shared secrets, a reserved key name, `auth: keys` without a key,
    a usage store no store speaks."""
    checker = _AccessChecker(places)
    simple = environ.get(SIMPLE_MODE_VARIABLE) or ""
    keys: Mapping[str, Any] = sections.get("keys") or {}
    checker.check_keys(keys, simple)
    if sections.get("auth") == "keys" and not keys and not simple:
        checker.error(
            ("auth",),
            "auth: keys but no key is configured",
            "add a key under `keys:` or set the API_KEY variable; `auth: none` runs open on purpose",
        )
    checker.check_store(sections.get("settings") or {})
    return checker.diagnostics


class _AccessChecker:
    """Collects the access diagnostics, each at the place its entry was written."""

    def __init__(self, places: SectionPlaces) -> None:
        self.places = places
        self.diagnostics: list[Diagnostic] = []

    def error(self, path: DocumentPath, message: str, hint: str, *, key: bool = False) -> None:
        where, line, column = self.places.find(path, key=key)
        self.diagnostics.append(Diagnostic(where, line, column, message, hint=hint, code="semantic"))

    def where(self, path: DocumentPath) -> str:
        where, line, column = self.places.find(path)
        return where if line is None else f"{where}:{line}:{column}"

    def check_keys(self, keys: Mapping[str, Any], simple: str) -> None:
        # Who first holds each digest; a secret shared by two keys would make them indistinguishable.
        holders: dict[bytes, tuple[str, str]] = {}
        if simple:
            holders[secret_digest(simple)] = (SIMPLE_MODE_KEY_NAME, "the API_KEY variable")
        for name, spec in keys.items():
            path: DocumentPath = ("keys", name)
            if name == SIMPLE_MODE_KEY_NAME and simple:
                self.error(
                    path,
                    f"key name {SIMPLE_MODE_KEY_NAME!r} is reserved for the API_KEY variable, which is set",
                    "rename this key, or unset API_KEY (simple mode: that variable is one admin key)",
                    key=True,
                )
            secret = spec.get("secret")
            if not isinstance(secret, str) or not secret:
                self.error(
                    (*path, "secret"),
                    f"key {name!r} has no secret: the variable it names is empty",
                    "set the variable to the key clients send, or write its sha256:<hex> (gateway hash-key)",
                )
                continue
            digest = secret_digest(secret)
            holder = holders.setdefault(digest, (name, self.where((*path, "secret"))))
            if holder[0] != name:
                self.error(
                    (*path, "secret"),
                    f"keys {holder[0]!r} and {name!r} have the same secret (the first at {holder[1]})",
                    "give every key its own secret (its own variable), or remove the repeated key",
                )

    def check_store(self, settings: Mapping[str, Any]) -> None:
        url = settings.get("stats_store", DEFAULT_STORE)
        if not is_store_url(url):
            # The value is not repeated: a redis URL may carry a password.
            scheme = url.partition("://")[0] if "://" in url else ""
            if not url:
                hint = "the variable it names is empty: set it, or give a default: ${VAR:-memory}"
            elif scheme:
                hint = f"{scheme}:// is not a store: use one of {', '.join(STORE_SCHEMES)}"
            else:
                hint = "write a URL such as redis://127.0.0.1:6379/0 (rediss:// for TLS)"
            self.error(
                ("settings", "stats_store"),
                "settings.stats_store must be `memory`, a SQLite file path (or sqlite:///path) "
                "or a redis://host:port/db URL",
                hint,
            )
        if not settings.get("stats_store_prefix", DEFAULT_PREFIX):
            self.error(
                ("settings", "stats_store_prefix"),
                "settings.stats_store_prefix must be a non-empty string",
                "the variable it names is empty: set it, or leave the prefix out (default gateway)",
            )
