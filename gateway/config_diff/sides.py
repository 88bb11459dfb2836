"""One side of a diff: a config directory (or file), or a path in a git revision, loaded as `serve` loads
it, with what is needed to say where each value was written.

Unset variables: a reviewer's CI has no provider or gateway keys, so a `${VAR}` written without a default
whose variable is not set reads as a placeholder (`placeholders`), not as a missing value. The load is
otherwise the loader's own; the placeholder is shown back as `${VAR}` and is never a real value. Set
variables are used as `serve` would use them (secrets among them are only compared by digest).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.config import Diagnostic, GatewayConfig, LoadResult, load_config
from gateway.config.discover import find_route_files
from gateway.config.yaml_source import DocumentPath, SourceFile, read_source

_REFERENCE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<default>:-)?)")
# `http://` placeholders where a URL is expected (a base_url that is one variable), bare names elsewhere.
_PLACEHOLDER = re.compile(r"(?:http://)?envunset-(?P<name>[A-Za-z_][A-Za-z0-9_]*)\.invalid")
_URL_LEAVES = frozenset({"base_url", "proxy", "endpoint"})


class GitError(Exception):
    """A revision or path git cannot give (the message is git's own, one line)."""


@dataclass(frozen=True, slots=True)
class Side:
    """A loaded side. `root` is the directory file paths are compared under (a route moved to another
    file is told from one that stayed); `shown` turns a loader label into the path printed."""

    name: str  # "old" or "new"
    label: str  # the directory as given, or REV:PATH
    root: Path
    result: LoadResult
    sources: tuple[SourceFile, ...]
    shown_from: Path  # paths are printed relative to it: the working directory, or a git side's root

    @property
    def config(self) -> GatewayConfig:
        assert self.result.config is not None, "only a side that loaded is compared"
        return self.result.config

    def shown(self, label: str) -> str:
        return os.path.relpath(label, self.shown_from)

    def relative(self, label: str) -> str:
        return os.path.relpath(label, self.root)

    def errors(self) -> list[Diagnostic]:
        return [replace(diagnostic, path=self.shown(diagnostic.path)) for diagnostic in self.result.errors]

    def at(self, path: DocumentPath) -> str | None:
        """`file:line` of the deepest part of `path` written in any file (the first file that has it)."""
        best: tuple[int, SourceFile] | None = None
        for source in self.sources:
            depth = _held_depth(source.data, path)
            if depth and (best is None or depth > best[0]):
                best = (depth, source)
        if best is None:
            return None
        depth, source = best
        line, _ = source.position(path[:depth], key=True)
        return f"{self.shown(source.path)}:{line}"


def load_side(
    name: str, label: str, path: Path, root: Path, environ: Mapping[str, str], shown_from: Path
) -> Side:
    """Load `path` (directory or file) with unset variables read as placeholders."""
    files, _ = find_route_files([path])
    sources = tuple(
        source for source in (read_source(file, str(file))[0] for file in files) if source is not None
    )
    effective = {**placeholders(sources, environ), **environ}
    result = load_config([path], effective)
    return Side(name, label, root, result, sources, shown_from)


def placeholders(sources: tuple[SourceFile, ...], environ: Mapping[str, str]) -> dict[str, str]:
    """A stand-in for each variable that is unset and written only without a default (one written with a
    default somewhere keeps it: a placeholder would override the default)."""
    bare: dict[str, bool] = {}  # name -> used where a URL is expected
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
                as_url = match.start() == 0 and bool(path) and _is_url_field(path)
                bare[name] = bare.get(name, False) or as_url
    return {
        name: f"http://envunset-{name}.invalid" if as_url else f"envunset-{name}.invalid"
        for name, as_url in bare.items()
        if name not in environ and name not in defaulted
    }


def shown_value(text: str) -> str:
    """A value as printed: placeholders become the `${VAR}` they stand for."""
    return _PLACEHOLDER.sub(lambda match: "${" + match.group("name") + "}", text)


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


def _held_depth(data: Any, path: DocumentPath) -> int:
    for depth, step in enumerate(path):
        if isinstance(data, dict) and step in data:
            data = data[step]
            continue
        if isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data):
            data = data[step]
            continue
        return depth
    return len(path)


# Git revisions.


def repository_path(path: str, cwd: Path) -> tuple[Path, str]:
    """(the repository's top directory, `path` relative to it) for a path given relative to `cwd`."""
    top = Path(_git(["rev-parse", "--show-toplevel"], cwd).decode().strip())
    relative = os.path.relpath((cwd / path).resolve(), top.resolve())
    if relative.startswith(".."):
        raise GitError(f"{path} is outside the git repository at {top}")
    return top, Path(relative).as_posix()


def extract_revision(top: Path, revision: str, path: str, into: Path) -> Path:
    """Write `path` as it is in `revision` under `into` (no checkout: the work tree is not touched)."""
    _git(
        ["rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], top, f"unknown revision {revision!r}"
    )
    archive = _git(["archive", "--format=tar", revision, "--", path], top, f"{revision} has no {path}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            target = (into / member.name).resolve()
            if not member.isfile() or not target.is_relative_to(into.resolve()):
                continue  # route files are regular files; nothing may land outside `into`
            source = tar.extractfile(member)
            if source is not None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read())
    return into / path


def _git(args: list[str], cwd: Path, failure: str | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except OSError as exc:
        raise GitError(f"cannot run git: {exc.strerror or exc}") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(failure or (message[0] if message else f"git {args[0]} failed"))
    return done.stdout
