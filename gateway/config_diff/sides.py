"""One side of a diff: a config directory (or file), or a path in a git revision, loaded as `serve` loads
it, with what is needed to say where each value was written.

Unset variables: a reviewer's CI has no provider or gateway keys, so a `${VAR}` written without a default
whose variable is not set reads as a placeholder (`config/placeholders.py`), not as a missing value.
Set variables are used as `serve` would use them (secrets among them are only compared by digest).
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gateway.config import Diagnostic, GatewayConfig, LoadResult
from gateway.config.placeholders import load_offline
from gateway.config.yaml_source import DocumentPath, SourceFile


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
    offline = load_offline([path], environ)
    return Side(name, label, root, offline.result, offline.sources, shown_from)


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
