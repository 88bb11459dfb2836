"""The model names `GET /v1/models` shows: the routing table's, plus what `discover_models` routes learn
from their targets' providers (each provider's list cached by the provider, `providers/model_list.py`)."""

from __future__ import annotations

import asyncio
import fnmatch

from gateway.config.models import RouteConfig
from gateway.runtime.snapshot import Runtime


async def listed_model_names(runtime: Runtime) -> list[str]:
    """Exact names, aliases and `listed_models` first, then discovered names, each once, each shown only
    when the route that discovered it is the one that answers it."""
    names = runtime.table.model_names()
    discovering = [route for route in runtime.table.routes if route.discover_models is not None]
    if not discovering:
        return names
    found = await asyncio.gather(*(_discovered(runtime, route) for route in discovering))
    seen = set(names)
    for route, candidates in zip(discovering, found, strict=True):
        for name in candidates:
            match = runtime.table.resolve(name)
            if name not in seen and match is not None and match.route is route:
                names.append(name)
                seen.add(name)
    return names


async def _discovered(runtime: Runtime, route: RouteConfig) -> list[str]:
    """The names the route's glob matches among its pass-through targets' provider lists."""
    assert route.discover_models is not None
    providers = [
        provider
        for target in route.targets
        if target.model is None
        and (provider := runtime.registry.get(target.provider)) is not None
        and provider.available
    ]
    lists = await asyncio.gather(*(p.model_list.names(route.discover_models) for p in providers))
    return [name for names in lists for name in names if fnmatch.fnmatchcase(name, route.model)]
