"""Route files -> one immutable `GatewayConfig`.

    load_config(paths, environ)   find files, parse YAML (ruamel, positions kept), validate against
                                  schemas/routes.schema.json, check across routes and files, resolve
                                  ${VAR} references, check keys/auth/settings (API_KEY included),
                                  build the frozen models of `models.py` (`GatewayConfig.access` too,
                                  `GatewayConfig.edge`: settings.cors and settings.limits, edge.py,
                                  and `GatewayConfig.prices`: the prices: section, prices.py;
                                  key budgets: budgets.py, their value objects budget_models.py).

Every problem is a `Diagnostic` with file:line:col and a hint; a load with errors yields no config.
"""

from .diagnostics import Diagnostic, Severity
from .discover import find_route_files, is_route_file_name
from .loader import LoadResult, config_version, load_config, load_config_or_raise
from .models import (
    AccessConfig,
    Backoff,
    CircuitBreaker,
    GatewayConfig,
    HealthCheck,
    KeyConfig,
    KeyLimits,
    MockOptions,
    PoolLimits,
    Position,
    ProviderConfig,
    RetryPolicy,
    RouteConfig,
    StoreSettings,
    Target,
    Timeouts,
)
from .schema import routes_schema, schema_text

__all__ = [
    "AccessConfig",
    "Backoff",
    "CircuitBreaker",
    "Diagnostic",
    "GatewayConfig",
    "HealthCheck",
    "KeyConfig",
    "KeyLimits",
    "LoadResult",
    "MockOptions",
    "PoolLimits",
    "Position",
    "ProviderConfig",
    "RetryPolicy",
    "RouteConfig",
    "Severity",
    "StoreSettings",
    "Target",
    "Timeouts",
    "config_version",
    "find_route_files",
    "is_route_file_name",
    "load_config",
    "load_config_or_raise",
    "routes_schema",
    "schema_text",
]
