"""The reserved top-level sections (`keys`, `auth`, `settings`, `prices`), merged over all files and
interpolated.

The merged, interpolated sections are checked (`semantics.check_access`, `edge.check_edge`,
`prices.check_prices`) and built into `GatewayConfig` (`builder.build_access`, `edge.build_edge`,
`prices.build_prices`); `SectionPlaces` tells both where each entry was written.
Merging: mappings are merged
key by key, lists are concatenated in load order, a scalar may be repeated only with the same value;
anything written twice in conflicting ways is an error naming both places. A `${VAR}` here with no default
and no value is an error (an empty gateway key must never become a valid key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .diagnostics import Diagnostic
from .interpolate import InterpolationError, interpolate
from .yaml_source import DocumentPath, SourceFile

SECTIONS = ("keys", "auth", "settings", "prices")
NO_FILE = "keys/auth/settings"  # the label of sections given as plain data, without a file


class SectionPlaces:
    """Where an entry of the merged sections was written: the first file that has it (a second file may
    only repeat a scalar with the same value). Without files (plain data) there is no position."""

    __slots__ = ("sources",)

    def __init__(self, sources: Sequence[SourceFile] = ()) -> None:
        self.sources = tuple(sources)

    def find(self, path: DocumentPath, *, key: bool = False) -> tuple[str, int | None, int | None]:
        """(file, line, column) of the value at `path` (of its key when `key`), or (NO_FILE, None, None)."""
        for source in self.sources:
            if _holds(source.data, path):
                line, column = source.position(path, key=key)
                return source.path, line, column
        return NO_FILE, None, None


def _holds(data: Any, path: DocumentPath) -> bool:
    for step in path:
        in_mapping = isinstance(data, dict) and step in data
        in_list = isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data)
        if in_mapping or in_list:
            data = data[step]
        else:
            return False
    return True


def merge_sections(
    sources: Sequence[SourceFile], environ: Mapping[str, str], diagnostics: list[Diagnostic]
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    origin: dict[DocumentPath, str] = {}  # where each merged entry was first written, for messages
    for source in sources:
        for section in SECTIONS:
            if section not in source.data:
                continue
            value = _interpolated(source, (section,), source.data[section], environ, diagnostics)
            _merge_into(merged, origin, section, value, source, diagnostics)
    return merged


def _merge_into(
    merged: dict[str, Any],
    origin: dict[DocumentPath, str],
    section: str,
    value: Any,
    source: SourceFile,
    diagnostics: list[Diagnostic],
) -> None:
    path: DocumentPath = (section,)
    if section not in merged:
        merged[section] = value
        origin[path] = source.where(path, key=True)
        if isinstance(value, dict):
            for key in value:
                origin[(section, key)] = source.where((section, key), key=True)
        return
    current = merged[section]
    if isinstance(current, list) and isinstance(value, list):
        current.extend(value)
    elif isinstance(current, dict) and isinstance(value, dict):
        for key, item in value.items():
            if key in current:
                _conflict(source, (section, key), f"{section}.{key}", origin[(section, key)], diagnostics)
                continue
            current[key] = item
            origin[(section, key)] = source.where((section, key), key=True)
    elif current != value:
        _conflict(source, path, section, origin[path], diagnostics)


def _conflict(
    source: SourceFile, path: DocumentPath, name: str, first: str, diagnostics: list[Diagnostic]
) -> None:
    line, column = source.position(path, key=True)
    diagnostics.append(
        Diagnostic(
            source.path,
            line,
            column,
            f"{name} is set twice: here and at {first}",
            hint="write it in one route file only",
            code="semantic",
        )
    )


def _interpolated(
    source: SourceFile,
    path: DocumentPath,
    value: Any,
    environ: Mapping[str, str],
    diagnostics: list[Diagnostic],
) -> Any:
    if isinstance(value, dict):
        return {
            key: _interpolated(source, (*path, key), item, environ, diagnostics)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolated(source, (*path, index), item, environ, diagnostics)
            for index, item in enumerate(value)
        ]
    if not isinstance(value, str):
        return value
    line, column = source.position(path)
    try:
        resolved = interpolate(value, environ)
    except InterpolationError as exc:
        diagnostics.append(Diagnostic(source.path, line, column, exc.message, exc.hint, code="env"))
        return value
    if resolved.unset:
        name = resolved.unset[0]
        diagnostics.append(
            Diagnostic(
                source.path,
                line,
                column,
                f"environment variable {name} is not set",
                hint=f"set {name}, or give a default: ${{{name}:-value}}",
                code="env",
            )
        )
    return resolved.value
