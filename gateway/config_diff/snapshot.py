"""What one side routes, as comparable entities: per model name its route and target chain per inbound
API, per route its effective policy (as `gateway explain` computes it), per provider, key and price their
fields, and one entity for the settings. Each field knows where it was written."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.config import GatewayConfig, Position, ProviderConfig, RouteConfig, Target
from gateway.config.apis import LONG_TO_SHORT, upstream_api
from gateway.config.models import ApiName
from gateway.config.policy import first_target_provider, route_retry
from gateway.config.yaml_source import DocumentPath
from gateway.routing.table import RoutingTable

from .flatten import Flat, flatten, url_into
from .sides import Side

GROUPS = ("models", "routes", "providers", "keys", "prices", "settings")
TLS_FILES = ("tls.ca_bundle", "tls.client_cert", "tls.client_key")
# GatewayConfig and AccessConfig fields with an entity of their own; any other field (a section added
# later) is compared generically in the settings.
OWN_CONFIG_FIELDS = frozenset(
    {"providers", "routes", "sources", "version", "access", "edge", "tracing", "prices"}
)
OWN_ACCESS_FIELDS = frozenset({"mode", "keys", "store", "ignored_keys"})
SETTINGS_PLACES: dict[str, DocumentPath] = {
    "auth": ("auth",),
    "store.url": ("settings", "stats_store"),
    "store.prefix": ("settings", "stats_store_prefix"),
    "store.flush_interval": ("settings", "stats_flush_interval"),
    "store.failure_mode": ("settings", "store_failure_mode"),
    "prices.currency": ("prices", "currency"),
}


@dataclass(slots=True)
class Entity:
    """One model, route, provider, key, price or the settings, flattened."""

    fields: Flat
    at: str | None  # where it is defined, `file:line` as printed
    file: str | None  # its file relative to the side's root: a change of it is a move, not a change
    summary: str  # one line, for an added or removed entity
    places: dict[str, str | None] = field(default_factory=dict)  # field -> `file:line`
    note: str = ""  # context printed with a change (the routes a provider serves)


Snapshot = dict[str, dict[str, Entity]]


def model_names(config: GatewayConfig) -> list[str]:
    """The names a client can ask for (exact, aliases, listed) and the globs, in the order written."""
    table = RoutingTable(config)
    globs = [route.model for route in config.routes if route.is_pattern]
    return table.model_names() + list(dict.fromkeys(globs))


def snapshot(side: Side, names: Iterable[str]) -> Snapshot:
    """Every entity of `side`; `names` are the model names of both sides, each resolved on this one."""
    config = side.config
    table = RoutingTable(config)
    listed = set(table.model_names())
    models: dict[str, Entity] = {}
    for name in names:
        entity = _model(side, table, name, name in listed)
        if entity is not None:
            models[name] = entity
    return {
        "models": models,
        "routes": {route.name: _route(side, route) for route in config.routes},
        "providers": {name: _provider(side, provider) for name, provider in config.providers.items()},
        "keys": _keys(side),
        "prices": _prices(side),
        "settings": {"settings": _settings(side)},
    }


def _model(side: Side, table: RoutingTable, name: str, listed: bool) -> Entity | None:
    config = side.config
    if _is_glob(name):
        route = next((route for route in config.routes if route.model == name), None)
        kind = "glob"
    else:
        match = table.resolve(name)
        route = None if match is None else match.route
        kind = "" if match is None else match.kind if match.kind != "pattern" else f"glob {match.route.model}"
    if route is None:
        return None
    fields: Flat = {"route": route.name, "match": kind}
    if not _is_glob(name):
        fields["listed"] = listed
    tried = _tried(route)
    chain = tuple(f"{target.provider}/{target.model or name}" for target in tried)
    fields["chain"] = chain
    # The order `gateway explain` lists (priority, then list order); per inbound API how each provider
    # is reached, sorted so that a reordering shows once, in `chain`.
    for api in route.apis:
        fields[f"api.{LONG_TO_SHORT[api]}"] = tuple(
            sorted(_reached(target, config.providers.get(target.provider), api) for target in tried)
        )
    at = _shown(side, route.position)
    summary = f"route {route.name} ({kind}): " + ", ".join(chain)
    places: dict[str, str | None] = dict.fromkeys(fields, at)
    return Entity(fields, at, None, summary, places)  # models follow their route: no move of their own


def _reached(target: Target, provider: ProviderConfig | None, api: ApiName) -> str:
    """`primary native`, `claude via messages`: what an `api` request is sent to `target` in."""
    upstream = None if provider is None else upstream_api(api, tuple(provider.apis))
    if upstream is None:
        return f"{target.provider} unreachable"
    return (
        f"{target.provider} native" if upstream == api else f"{target.provider} via {LONG_TO_SHORT[upstream]}"
    )


def _tried(route: RouteConfig) -> list[Target]:
    return sorted(route.targets, key=lambda target: target.priority)


def _route(side: Side, route: RouteConfig) -> Entity:
    config = side.config
    retry, retry_from = route_retry(route, config.providers)
    fields: Flat = {
        "model": route.model,
        "aliases": route.aliases,
        "listed_models": route.listed_models,
        "apis": tuple(LONG_TO_SHORT[api] for api in route.apis),
        "strategy": route.strategy,
        "streaming": route.streaming,
        "targets": tuple(_target_name(target) for target in route.targets),
    }
    paths: dict[str, DocumentPath] = {}
    for index, target in enumerate(route.targets):
        key = f"targets[{_target_name(target)}]"
        if f"{key}.priority" in fields:  # the same provider and model twice: tell them apart by place
            key = f"targets[{_target_name(target)}#{index + 1}]"
        fields[f"{key}.priority"] = target.priority
        paths[f"{key}.priority"] = ("targets", index, "priority")
        if route.strategy == "weighted":  # weights mean nothing to the other strategies
            fields[f"{key}.weight"] = target.weight
            paths[f"{key}.weight"] = ("targets", index, "weight")
    fields.update(flatten(retry, "retry"))
    fields["retry from"] = retry_from
    # One line: the route's own timeouts replace every target's provider's as a whole.
    fields["timeouts"] = (
        "each target's provider's"
        if route.timeouts is None
        else ", ".join(f"{name} {_plain(value)}" for name, value in flatten(route.timeouts).items())
    )
    fields.update(flatten(route, skip=frozenset({*_ROUTE_DONE})))
    places = {
        name: side.at(("routes", route.name, *paths.get(name, _document_path(name)))) for name in fields
    }
    first = first_target_provider(route.targets, config.providers)
    if route.retry is None and first is not None:  # the retry written on the first target's provider
        for name in fields:
            if name.startswith("retry."):
                places[name] = side.at(("providers", first.name, *_document_path(name)))
    summary = f"model {route.model}: " + ", ".join(_target_name(target) for target in route.targets)
    return Entity(fields, _shown(side, route.position), _file(side, route.position), summary, places)


_ROUTE_DONE = {
    "name",
    "model",
    "targets",
    "aliases",
    "listed_models",
    "apis",
    "strategy",
    "streaming",
    "retry",
    "timeouts",
}


def _target_name(target: Target) -> str:
    return target.provider if target.model is None else f"{target.provider}/{target.model}"


def _provider(side: Side, provider: ProviderConfig) -> Entity:
    fields = flatten(provider, skip=frozenset({"name", "apis", "unavailable_reason"}))
    for api, url in provider.apis.items():
        url_into(fields, f"apis.{LONG_TO_SHORT[api]}", url)
    fields["unavailable"] = provider.unavailable_reason
    root = side.root.resolve()
    for name in TLS_FILES:
        value = fields.get(name)
        if isinstance(value, str):  # made absolute by the builder: compared relative to the side
            fields[name] = os.path.relpath(value, root)
    users = [
        route.name for route in side.config.routes if any(t.provider == provider.name for t in route.targets)
    ]
    note = f"serves routes: {', '.join(users)}" if users else "serves no route"
    places = {name: side.at(("providers", provider.name, *_document_path(name))) for name in fields}
    summary = f"{provider.type} at {provider.base_url or 'built in'}"
    return Entity(
        fields, _shown(side, provider.position), _file(side, provider.position), summary, places, note
    )


def _keys(side: Side) -> dict[str, Entity]:
    keys: dict[str, Entity] = {}
    for key in side.config.access.keys:
        fields = {
            ("secret" if name == "digest" else name): value
            for name, value in flatten(key, skip=frozenset({"name"})).items()
        }
        places = {name: side.at(("keys", key.name, *_document_path(name))) for name in fields}
        models = ", ".join(key.models) or "every model"
        summary = f"{key.role}, models: {models}"
        keys[key.name] = Entity(
            fields, _shown(side, key.position), _file(side, key.position), summary, places
        )
    return keys


def _prices(side: Side) -> dict[str, Entity]:
    table = side.config.prices
    prices: dict[str, Entity] = {}
    for index, entry in enumerate(() if table is None else table.entries):
        path: DocumentPath = ("prices", "models", index)
        fields: Flat = {
            name: None if value is None else _per_million(value)
            for name, value in flatten(entry, skip=frozenset({"provider", "model"})).items()
            if not isinstance(value, (str, tuple))
        }
        at = side.at(path)
        places = {name: side.at((*path, name)) for name in fields}
        summary = ", ".join(f"{name} {value}" for name, value in fields.items() if value is not None)
        prices.setdefault(f"{entry.provider}/{entry.model}", Entity(fields, at, None, summary, places))
    return prices


def _settings(side: Side) -> Entity:
    config = side.config
    access = config.access
    fields: Flat = {"auth": access.mode}
    fields.update(flatten(access.store, "store"))
    fields.update(flatten(access, skip=OWN_ACCESS_FIELDS))
    if config.edge.cors is None:
        fields["cors"] = "off"
    else:
        fields.update(flatten(config.edge.cors, "cors"))
    fields.update(flatten(config.edge.limits, "limits"))
    fields.update(flatten(config.tracing, "tracing"))
    if config.prices is not None:
        fields["prices.currency"] = config.prices.currency
    for item in dataclasses.fields(config):
        if item.name not in OWN_CONFIG_FIELDS:
            fields.update(flatten(getattr(config, item.name), item.name))
    places = {
        name: side.at(SETTINGS_PLACES.get(name) or ("settings", *_document_path(name))) for name in fields
    }
    places["auth"] = places["auth"] or side.at(("keys",))  # without `auth:`, the keys decide the mode
    return Entity(fields, None, None, "", places)


def _document_path(name: str) -> DocumentPath:
    """A flat field name as a path into the route file (`retry.backoff.base`); where the names differ
    the nearest written part is found instead."""
    return tuple(name.replace(" from", "").split("."))


def _plain(value: object) -> str:
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _per_million(pico: object) -> str:
    """Pico-units per token as the price per million tokens it was written as."""
    return f"{Decimal(str(pico)).scaleb(-6).normalize():f}"


def _is_glob(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def _shown(side: Side, position: Position | None) -> str | None:
    return None if position is None else f"{side.shown(position.path)}:{position.line}"


def _file(side: Side, position: Position | None) -> str | None:
    return None if position is None else side.relative(position.path)
