"""The `settings.cors` and `settings.limits` sections: checked (what the schema cannot say) and built
into `EdgeSettings`, which the inbound middleware (`api/cors.py`, `api/limits.py`) reads per request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .diagnostics import Diagnostic
from .models import (
    DEFAULT_CORS_EXPOSE,
    DEFAULT_CORS_HEADERS,
    DEFAULT_CORS_METHODS,
    CorsSettings,
    EdgeSettings,
    InputLimits,
)
from .sections import SectionPlaces


def check_edge(sections: Mapping[str, Any], places: SectionPlaces) -> list[Diagnostic]:
    """Browsers refuse `Access-Control-Allow-Origin: *` on a credentialed request: never configure it."""
    cors = (sections.get("settings") or {}).get("cors")
    if not cors or not cors.get("allow_credentials") or "*" not in cors["allow_origins"]:
        return []
    index = cors["allow_origins"].index("*")
    where, line, column = places.find(("settings", "cors", "allow_origins", index))
    return [
        Diagnostic(
            where,
            line,
            column,
            "settings.cors: allow_origins `*` together with allow_credentials: true (browsers refuse it)",
            hint="list the origins allowed to send credentials, or set allow_credentials: false",
            code="semantic",
        )
    ]


def build_edge(sections: Mapping[str, Any]) -> EdgeSettings:
    """The edge settings of sections that passed the schema and `check_edge`."""
    settings = sections.get("settings") or {}
    limits = InputLimits(**(settings.get("limits") or {}))
    raw = settings.get("cors")
    if raw is None:
        return EdgeSettings(None, limits)
    cors = CorsSettings(
        allow_origins=tuple(raw["allow_origins"]),
        allow_methods=tuple(method.upper() for method in raw.get("allow_methods", DEFAULT_CORS_METHODS)),
        allow_headers=tuple(header.lower() for header in raw.get("allow_headers", DEFAULT_CORS_HEADERS)),
        expose_headers=tuple(raw.get("expose_headers", DEFAULT_CORS_EXPOSE)),
        allow_credentials=bool(raw.get("allow_credentials", False)),
        max_age=int(raw.get("max_age", 600)),
    )
    return EdgeSettings(cors, limits)
