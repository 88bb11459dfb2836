"""Load route files into one `GatewayConfig`: the public entry point of the config package.

Steps, each stopping the load when it finds errors so later checks never report follow-on noise:
find the files, parse the YAML, validate each file against the schema, then check across routes and
files, resolve `${VAR}` references, check the keys/auth/settings sections against what `gateway serve`
can use (the API_KEY variable included) and build the immutable models. `gateway serve` and
`gateway validate-config` both load through here, so they refuse the same configs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from ..errors import ConfigError
from .budgets import check_budgets
from .builder import build_access, build_providers, build_routes
from .diagnostics import Diagnostic, count
from .discover import find_route_files
from .edge import build_edge, check_edge
from .models import GatewayConfig
from .prices import build_prices, check_prices
from .schema import validate_source
from .sections import SectionPlaces, merge_sections
from .semantics import check_access, check_semantics
from .tracing import build_tracing
from .yaml_source import SourceFile, read_source


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load produced: the config (None when there is any error) and every diagnostic."""

    config: GatewayConfig | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.config is not None

    @property
    def errors(self) -> list[Diagnostic]:
        return [diagnostic for diagnostic in self.diagnostics if diagnostic.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [diagnostic for diagnostic in self.diagnostics if not diagnostic.is_error]

    @property
    def is_usage_error(self) -> bool:
        """The paths themselves were wrong (missing, or no route files): nothing was validated."""
        return any(diagnostic.code == "usage" for diagnostic in self.diagnostics)


def load_config(paths: Sequence[str | Path], environ: Mapping[str, str] | None = None) -> LoadResult:
    """Load directories (their *.yaml/*.yml files, sorted) and files. `environ` defaults to os.environ;
    pass a mapping to make `${VAR}` resolution (and the API_KEY variable) explicit (tests, reloads)."""
    files, problems = find_route_files(paths)
    if problems:
        return LoadResult(None, problems)
    labels = tuple(str(file) for file in files)
    diagnostics: list[Diagnostic] = []
    sources: list[SourceFile] = []
    for file, label in zip(files, labels, strict=True):
        source, problem = read_source(file, label)
        if problem is not None:
            diagnostics.append(problem)
        elif source is not None:
            if source.data is None:  # an empty (or all-comments) file defines nothing
                source = SourceFile(source.path, source.text, source.tree, {})
            sources.append(source)
            diagnostics.extend(validate_source(source))
    if count(diagnostics)[0]:
        return LoadResult(None, diagnostics, labels)

    diagnostics.extend(check_semantics(sources))
    if count(diagnostics)[0]:
        return LoadResult(None, _ordered(diagnostics, labels), labels)

    environ = os.environ if environ is None else environ
    providers = build_providers(sources, environ, diagnostics)
    routes = build_routes(sources, providers)
    sections = merge_sections(sources, environ, diagnostics)
    if not count(diagnostics)[0]:  # no follow-on noise from an unresolved ${VAR}
        diagnostics.extend(check_access(sections, environ, SectionPlaces(sources)))
        diagnostics.extend(check_edge(sections, SectionPlaces(sources)))
        diagnostics.extend(check_prices(sections, SectionPlaces(sources), providers))
        diagnostics.extend(check_budgets(sections, SectionPlaces(sources), routes))
    diagnostics = _ordered(diagnostics, labels)
    if count(diagnostics)[0]:
        return LoadResult(None, diagnostics, labels)
    config = GatewayConfig(
        providers=MappingProxyType(providers),
        routes=routes,
        sources=labels,
        version=config_version(sources),
        access=build_access(sections, environ, SectionPlaces(sources)),
        edge=build_edge(sections),
        tracing=build_tracing(sections),
        prices=build_prices(sections),
    )
    return LoadResult(config, diagnostics, labels)


def load_config_or_raise(
    paths: Sequence[str | Path], environ: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Like `load_config`, but raise `ConfigError` (carrying every diagnostic) when the config is invalid."""
    result = load_config(paths, environ)
    if result.config is None:
        raise ConfigError(result.diagnostics)
    return result.config


def config_version(sources: Sequence[SourceFile]) -> str:
    """Short sha256 of the raw files (name and content, sorted by name): the same files give the same
    version wherever they are loaded from. Environment values are not part of it."""
    digest = hashlib.sha256()
    for source in sorted(sources, key=lambda source: (Path(source.path).name, source.path)):
        digest.update(Path(source.path).name.encode())
        digest.update(b"\0")
        digest.update(source.text.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def _ordered(diagnostics: list[Diagnostic], labels: Sequence[str]) -> list[Diagnostic]:
    """In load order of the files, then by position."""
    rank = {label: index for index, label in enumerate(labels)}
    return sorted(diagnostics, key=lambda d: (rank.get(d.path, -1), d.line or 0, d.column or 0))
