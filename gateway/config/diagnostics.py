"""Problems found while loading route files, each with the place it was written.

A `Diagnostic` reads like a compiler message, `routes/a.yaml:3:5: error: message`, with a one-line hint
on the next line, so editors and CI annotations can jump to the spot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a route file. `line`/`column` are 1-based; None when the problem has no position
    (a missing file, an unreadable directory). `code` names the check, for machine-readable output."""

    path: str
    line: int | None
    column: int | None
    message: str
    hint: str = ""
    severity: Severity = "error"
    code: str = "config"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    @property
    def location(self) -> str:
        """`path:line:col`, or just the parts that are known."""
        if self.line is None:
            return self.path
        if self.column is None:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.column}"

    @property
    def headline(self) -> str:
        """The first line: `path:line:col: severity: message`."""
        return f"{self.location}: {self.severity}: {self.message}"

    def __str__(self) -> str:
        if self.hint:
            return f"{self.headline}\n  hint: {self.hint}"
        return self.headline

    def to_dict(self) -> dict[str, str | int | None]:
        """The machine-readable form (`validate-config --format json`, `/admin/config`)."""
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line or 0, self.column or 0, self.message)


def count(diagnostics: list[Diagnostic]) -> tuple[int, int]:
    """(errors, warnings)."""
    errors = sum(1 for diagnostic in diagnostics if diagnostic.is_error)
    return errors, len(diagnostics) - errors


def plural(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"
