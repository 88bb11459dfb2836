"""Route files -> one immutable `GatewayConfig`.

    load_config(paths, environ)   find files, parse YAML (ruamel, positions kept), validate against
                                  schemas/routes.schema.json, check across routes and files, resolve
                                  ${VAR} references, build the frozen models of `models.py`.

Every problem is a `Diagnostic` with file:line:col and a hint; a load with errors yields no config.
"""

from .diagnostics import Diagnostic, Severity
from .discover import find_route_files, is_route_file_name
from .loader import LoadResult, config_version, load_config, load_config_or_raise
from .models import (
    Backoff,
    CircuitBreaker,
    GatewayConfig,
    HealthCheck,
    MockOptions,
    PoolLimits,
    Position,
    ProviderConfig,
    RetryPolicy,
    RouteConfig,
    Target,
    Timeouts,
)
from .schema import routes_schema, schema_text

__all__ = [
    "Backoff",
    "CircuitBreaker",
    "Diagnostic",
    "GatewayConfig",
    "HealthCheck",
    "LoadResult",
    "MockOptions",
    "PoolLimits",
    "Position",
    "ProviderConfig",
    "RetryPolicy",
    "RouteConfig",
    "Severity",
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
