"""Loading route files without the deployment's secrets: the offline commands (`diff`, `test`, `replay`,
`explain`, `validate-config --no-secrets`) run where provider keys, gateway keys and store passwords are
not set (a config repository's CI, a reviewer's laptop).

Each `${VAR}` written without a default whose variable is not set is given a placeholder, so the config
loads as it would where the variable is set: a key with a secret, a provider that is available, a store
URL with a password. A placeholder is never a real value: `envunset-VAR.invalid` (a reserved domain, so a
URL made of one can never reach anything), shown back as `${VAR}`. A variable written with a default
somewhere keeps it (a placeholder would override the default). Set variables are used as `serve` uses
them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config.diagnostics import Diagnostic
from gateway.config.discover import find_route_files
from gateway.config.loader import LoadResult, load_config
from gateway.config.yaml_source import DocumentPath, SourceFile, read_source

_REFERENCE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<default>:-)?)")
# `http://` placeholders where a URL is expected (a base_url that is one variable), bare names elsewhere.
_PLACEHOLDER = re.compile(r"(?:http://)?envunset-(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.invalid")
_URL_LEAVES = frozenset({"base_url", "proxy", "endpoint"})


@dataclass(frozen=True, slots=True)
class OfflineLoad:
    """A load with placeholders; `placeholders`: each stood-in variable and where it is first written."""

    result: LoadResult
    sources: tuple[SourceFile, ...]
    placeholders: dict[str, Diagnostic]


def load_offline(paths: Sequence[str | Path], environ: Mapping[str, str] | None = None) -> OfflineLoad:
    """`load_config` with a placeholder for every unset variable written without a default."""
    base = os.environ if environ is None else environ
    files, _ = find_route_files(paths)
    sources = tuple(
        source for source in (read_source(file, str(file))[0] for file in files) if source is not None
    )
    stand_ins, first_uses = placeholders(sources, base)
    result = load_config(paths, {**stand_ins, **base})
    return OfflineLoad(result, sources, first_uses)


def shown_value(text: str) -> str:
    """A value as printed: placeholders become the `${VAR}` they stand for."""
    return _PLACEHOLDER.sub(lambda match: "${" + match.group("name") + "}", text)


def placeholder_names(text: str | None) -> list[str]:
    """The variables whose placeholders `text` holds (none for a real value)."""
    return [match.group("name") for match in _PLACEHOLDER.finditer(text or "")]


def placeholders(
    sources: tuple[SourceFile, ...], environ: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, Diagnostic]]:
    """(a stand-in for each variable that is unset and written only without a default, the warning at
    its first use). A URL-shaped stand-in where the variable begins a URL field, so the URL still parses."""
    as_url: dict[str, bool] = {}  # name -> used where a URL is expected
    first: dict[str, Diagnostic] = {}
    defaulted: set[str] = set()
    for source in sources:
        for path, text in _strings(source.data, ()):
            for match in _REFERENCE.finditer(text):
                name = match.group("name")
                if name is None:
                    continue
                if match.group("default"):
                    defaulted.add(name)
                    continue
                url = match.start() == 0 and bool(path) and _is_url_field(path)
                as_url[name] = as_url.get(name, False) or url
                if name not in first:
                    line, column = source.position(path)
                    first[name] = Diagnostic(
                        source.path,
                        line,
                        column,
                        f"environment variable {name} is not set: checked with a placeholder",
                        hint=f"where the gateway serves this config, {name} must be set",
                        severity="warning",
                        code="env",
                    )
    unset = [name for name in as_url if name not in environ and name not in defaulted]
    stand_ins = {
        name: f"http://envunset-{name}.invalid" if as_url[name] else f"envunset-{name}.invalid"
        for name in unset
    }
    return stand_ins, {name: first[name] for name in unset}


def _is_url_field(path: DocumentPath) -> bool:
    return path[-1] in _URL_LEAVES or (len(path) >= 2 and path[-2] == "apis")


def _strings(data: Any, path: DocumentPath) -> Iterator[tuple[DocumentPath, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _strings(value, (*path, index))
