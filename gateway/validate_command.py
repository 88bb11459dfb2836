"""`gateway validate-config [PATHS] [--format text|json|github] [--no-secrets]`: check route files without
serving.

By default the check is `serve`'s own on this machine: a gateway key or store URL whose `${VAR}` is unset is
an error, since `serve` would refuse the config. `--no-secrets` is for where the secrets never are (a config
repository's CI): each unset `${VAR}` written without a default is a warning at its first use and stands
for a placeholder (`config/placeholders.py`), so everything else is checked as if it were set.

Exit status: 0 valid (warnings allowed), 1 invalid, 2 usage error (a path does not exist, a directory
holds no route files, an unknown format). `text` prints compiler-style lines, `json` one document for
tools, `github` workflow commands that annotate the files in a pull request.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TextIO

from gateway.config import Diagnostic, LoadResult, load_config
from gateway.config.diagnostics import count, plural
from gateway.config.placeholders import load_offline

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
FORMATS = ("text", "json", "github")


def run_validate(
    paths: Sequence[str],
    fmt: str = "text",
    out: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    no_secrets: bool = False,
) -> int:
    """Validate `paths` (directories and/or files), print the diagnostics and a summary to `out`
    (default stdout), return the exit status."""
    out = sys.stdout if out is None else out
    if fmt not in FORMATS:
        print(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}", file=out)
        return EXIT_USAGE
    if no_secrets:
        offline = load_offline(list(paths), environ)
        diagnostics = [*offline.placeholders.values(), *offline.result.diagnostics]
        result = replace(offline.result, diagnostics=diagnostics)
    else:
        result = load_config(list(paths), environ)
    status = EXIT_USAGE if result.is_usage_error else EXIT_VALID if result.ok else EXIT_INVALID
    if fmt == "json":
        out.write(json.dumps(_as_json(result, status), indent=2) + "\n")
    elif fmt == "github":
        for diagnostic in result.diagnostics:
            print(github_command(diagnostic), file=out)
        print(_summary(result, status), file=out)
    else:
        for diagnostic in result.diagnostics:
            print(diagnostic, file=out)
        print(_summary(result, status), file=out)
    return status


def _summary(result: LoadResult, status: int) -> str:
    errors, warnings = count(result.diagnostics)
    if status == EXIT_USAGE:
        return "usage error: nothing was validated"
    files = plural(len(result.sources), "file")
    if result.config is None:
        return f"invalid: {plural(errors, 'error')}, {plural(warnings, 'warning')} in {files}"
    config = result.config
    found = f"{files}, {plural(len(config.providers), 'provider')}, {plural(len(config.routes), 'route')}"
    return f"valid: {found}" + (f" ({plural(warnings, 'warning')})" if warnings else "")


def _as_json(result: LoadResult, status: int) -> dict[str, object]:
    errors, warnings = count(result.diagnostics)
    config = result.config
    return {
        "valid": status == EXIT_VALID,
        "exit_code": status,
        "files": list(result.sources),
        "errors": errors,
        "warnings": warnings,
        "version": config.version if config else None,
        "providers": sorted(config.providers) if config else [],
        "routes": [route.name for route in config.routes] if config else [],
        "diagnostics": [diagnostic.to_dict() for diagnostic in result.diagnostics],
    }


def github_command(diagnostic: Diagnostic) -> str:
    """`::error file=F,line=L,col=C,title=T::message` (GitHub Actions workflow command)."""
    properties = [f"file={_escape_property(diagnostic.path)}"]
    if diagnostic.line is not None:
        properties.append(f"line={diagnostic.line}")
    if diagnostic.column is not None:
        properties.append(f"col={diagnostic.column}")
    properties.append(f"title={_escape_property('gateway config ' + diagnostic.code)}")
    message = diagnostic.message + (f"\nhint: {diagnostic.hint}" if diagnostic.hint else "")
    return f"::{diagnostic.severity} {','.join(properties)}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
