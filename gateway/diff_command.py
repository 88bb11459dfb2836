"""`gateway diff OLD NEW [--format text|json|markdown]`: what a config change does to routing.

OLD and NEW are two config directories (or files), or with `--git` / `--config PATH` two git revisions of
one path (`gateway diff main HEAD --config routes/`), read with `git archive` into a temporary directory
(the work tree is not touched) and removed after. Both sides load as `serve` loads them; a `${VAR}` that
is not set stands for itself, so no secret is needed. Compared: per model name its route and target chain
per inbound API, per route its effective policy, providers, keys, prices and settings; never a secret's
value (a changed secret says so, with its name).

Exit status, as `git diff --exit-code`: 0 no effective change (text-only edits included), 1 routing or
policy changed, 2 a side does not load, or a usage error.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from gateway.config_diff.compare import compare
from gateway.config_diff.render import Diff, SideInfo, as_json, render_markdown, render_text
from gateway.config_diff.sides import GitError, Side, extract_revision, load_side, repository_path
from gateway.config_diff.snapshot import model_names, snapshot

EXIT_SAME = 0
EXIT_CHANGED = 1
EXIT_ERROR = 2
FORMATS = ("text", "json", "markdown")
DEFAULT_GIT_PATH = "routes"


def run_diff(
    old: str,
    new: str,
    *,
    path: str | None = None,
    git: bool = False,
    fmt: str = "text",
    out: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Compare OLD and NEW (directories or files; git revisions when `git` or `path` is given), print
    the diff in `fmt` to `out` (default stdout), return the exit status."""
    out = sys.stdout if out is None else out
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    if fmt not in FORMATS:
        return _fail(out, fmt, [f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}"])
    if not git and path is None:
        missing = [side for side in (old, new) if not (cwd / side).exists()]
        if missing:
            hint = "; to compare git revisions, add --git (or --config PATH)"
            return _fail(out, fmt, [f"no such file or directory: {side}{hint}" for side in missing])
        sides = [
            load_side(name, label, cwd / label, _root(cwd / label), environ, shown_from=cwd)
            for name, label in (("old", old), ("new", new))
        ]
        return _report(sides, fmt, out)
    try:
        top, relative = repository_path(path or DEFAULT_GIT_PATH, cwd)
        with tempfile.TemporaryDirectory(prefix="gateway-diff-") as temporary:
            sides = []
            for name, revision in (("old", old), ("new", new)):
                root = Path(temporary) / name
                extracted = extract_revision(top, revision, relative, root)
                sides.append(
                    load_side(name, f"{revision}:{relative}", extracted, root, environ, shown_from=root)
                )
            return _report(sides, fmt, out)
    except GitError as exc:
        return _fail(out, fmt, [str(exc)])


def _root(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def _report(sides: list[Side], fmt: str, out: TextIO) -> int:
    broken = [side for side in sides if side.result.config is None]
    if broken:
        lines = []
        for side in broken:
            lines.append(f"{side.name} side ({side.label}) does not load:")
            lines += [str(diagnostic) for diagnostic in side.errors()]
        return _fail(
            out, fmt, lines, [{"side": side.name, **d.to_dict()} for side in broken for d in side.errors()]
        )
    old, new = sides
    names = list(dict.fromkeys(model_names(old.config) + model_names(new.config)))
    changes, moves = compare(snapshot(old, names), snapshot(new, names))
    diff = Diff(_info(old), _info(new), changes, moves)
    status = EXIT_CHANGED if diff.changed else EXIT_SAME
    if fmt == "json":
        out.write(json.dumps(as_json(diff, status), indent=2) + "\n")
    elif fmt == "markdown":
        out.write(render_markdown(diff))
    else:
        out.write(render_text(diff))
    return status


def _info(side: Side) -> SideInfo:
    return SideInfo(
        side.label, side.config.version, tuple(side.shown(label) for label in side.result.sources)
    )


def _fail(
    out: TextIO, fmt: str, lines: list[str], diagnostics: list[dict[str, str | int | None]] | None = None
) -> int:
    if fmt == "json":
        document = {
            "schema": 1,
            "changed": None,
            "exit_code": EXIT_ERROR,
            "errors": lines,
            "diagnostics": diagnostics or [],
        }
        out.write(json.dumps(document, indent=2) + "\n")
    elif fmt == "markdown":
        out.write("### Gateway config diff failed\n\n```\n" + "\n".join(lines) + "\n```\n")
    else:
        out.write("\n".join(lines) + "\n")
    return EXIT_ERROR
