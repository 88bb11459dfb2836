"""Which route files a list of paths names.

A directory stands for its `*.yaml` / `*.yml` files (sorted by name, not recursive), skipping hidden files
and editor leftovers so that saving in an editor never loads a half-written temp file. A file stands for
itself, whatever its name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .diagnostics import Diagnostic

ROUTE_FILE_SUFFIXES = (".yaml", ".yml")


def is_route_file_name(name: str) -> bool:
    """True for names a directory scan (and the hot-reload watcher) should pick up."""
    if name.startswith((".", "~", "#")) or name.endswith("~"):
        return False
    return name.endswith(ROUTE_FILE_SUFFIXES)


def find_route_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[Diagnostic]]:
    """The route files `paths` names, each once, in the order given (a directory's files sorted).

    Problems are usage errors (code `usage`): a path that does not exist, a directory without route
    files, or no paths at all.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    problems: list[Diagnostic] = []
    if not paths:
        problems.append(_usage("", "no route file or directory given", "pass a directory such as routes/"))
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                (child for child in path.iterdir() if child.is_file() and is_route_file_name(child.name)),
                key=lambda child: child.name,
            )
            if not found:
                problems.append(
                    _usage(str(path), "no route files (*.yaml, *.yml) in this directory", "add a route file")
                )
        elif path.is_file():
            found = [path]
        else:
            problems.append(_usage(str(path), "no such file or directory", "check the path"))
            continue
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files, problems


def _usage(path: str, message: str, hint: str) -> Diagnostic:
    return Diagnostic(path or "<arguments>", None, None, message, hint=hint, code="usage")
