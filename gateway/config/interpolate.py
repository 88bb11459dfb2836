"""`${VAR}` and `${VAR:-default}` in route file strings, read from an injected environment mapping.

`$$` writes a literal `$`. `${VAR:-default}` uses the default when VAR is unset or empty (as POSIX shells
and Docker Compose do). Nothing reads `os.environ` here: the caller passes the mapping, so tests and
reloads are deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_REFERENCE = re.compile(r"\$(?:(?P<escape>\$)|\{(?P<body>[^}]*)\}|(?P<open>\{))")
_BODY = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?$", re.DOTALL)


class InterpolationError(ValueError):
    """A malformed reference such as `${}` or `${1X}` or an unclosed `${`."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Interpolated:
    """The text with references replaced; `unset` / `empty` name variables written without a default
    that are not set / set to an empty string (each replaced by an empty string)."""

    value: str
    unset: tuple[str, ...] = ()
    empty: tuple[str, ...] = ()

    @property
    def missing_reason(self) -> str | None:
        """Why the value is unusable as a secret, or None."""
        if self.unset:
            return f"environment variable {self.unset[0]} is not set"
        if self.empty:
            return f"environment variable {self.empty[0]} is empty"
        return None


def has_reference(text: str) -> bool:
    return "${" in text


def interpolate(text: str, environ: Mapping[str, str]) -> Interpolated:
    """Replace every reference in `text`. Raises `InterpolationError` for malformed references."""
    if "$" not in text:
        return Interpolated(text)
    unset: list[str] = []
    empty: list[str] = []
    parts: list[str] = []
    position = 0
    for match in _REFERENCE.finditer(text):
        parts.append(text[position : match.start()])
        position = match.end()
        if match.group("escape"):
            parts.append("$")
            continue
        if match.group("open"):
            raise InterpolationError(
                "unclosed ${ in a variable reference: the closing } is missing",
                "write ${NAME} or ${NAME:-default}; $$ is a literal $",
            )
        parts.append(_resolve(match.group("body"), environ, unset, empty))
    parts.append(text[position:])
    return Interpolated("".join(parts), tuple(unset), tuple(empty))


def _resolve(body: str, environ: Mapping[str, str], unset: list[str], empty: list[str]) -> str:
    parsed = _BODY.match(body)
    if parsed is None:
        raise InterpolationError(
            f"invalid variable reference ${{{body}}}",
            "a variable name is letters, digits and _ and does not start with a digit: ${NAME:-default}",
        )
    name, default = parsed.group("name"), parsed.group("default")
    if default is not None and "${" in default:
        raise InterpolationError(
            f"nested reference in the default of ${{{name}}}", "a default is literal text: ${NAME:-value}"
        )
    value = environ.get(name)
    if default is not None:
        return value if value else default
    if value is None:
        unset.append(name)
        return ""
    if value == "":
        empty.append(name)
    return value
