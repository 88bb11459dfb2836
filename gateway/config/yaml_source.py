"""Read one route file with ruamel.yaml, keeping where every key and value was written.

The round-trip loader keeps line/column of each mapping key, mapping value and sequence item, so any
later check can point at the offending text. Validation and model building work on a plain copy
(`SourceFile.data`: dicts, lists, str, int, float, bool, None); both share the same paths.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .diagnostics import Diagnostic

# A path into a document: mapping keys and sequence indexes, e.g. ("routes", "chat", "targets", 0).
DocumentPath = tuple[str | int, ...]

_DUPLICATE_KEY = re.compile(r'found duplicate key "(?P<key>.*?)" with value')


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One parsed route file: its label (the path as the user gave it), raw text, the ruamel tree
    (positions) and the plain data (what is validated and built)."""

    path: str
    text: str
    tree: Any
    data: Any

    def position(self, path: DocumentPath, *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at `path`, or of its key when `key` is true.

        Falls back to the nearest enclosing node whose position is known (merged `<<:` keys have none).
        """
        node = self.tree
        line, column = _node_start(node)
        for depth, step in enumerate(path):
            last = depth == len(path) - 1
            found = _child_position(node, step, key=key and last)
            if found is None:
                break
            line, column = found
            child = _child(node, step)
            if child is None:
                break
            node = child
        return line + 1, column + 1

    def where(self, path: DocumentPath, *, key: bool = False) -> str:
        """`file:line:col` of a value (or key), for messages that name a second place."""
        line, column = self.position(path, key=key)
        return f"{self.path}:{line}:{column}"


def parse_source(path: str, text: str) -> tuple[SourceFile | None, Diagnostic | None]:
    """Parse `text` (the content of `path`). Bad YAML and duplicate keys give a diagnostic instead."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except YAMLError as exc:
        return None, _yaml_error(path, text, exc)
    return SourceFile(path=path, text=text, tree=tree, data=to_plain(tree)), None


def read_source(file: Path, label: str) -> tuple[SourceFile | None, Diagnostic | None]:
    """Read and parse a file; `label` is how the file is named in diagnostics."""
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, Diagnostic(
            label,
            None,
            None,
            f"not UTF-8 text ({exc.reason} at byte {exc.start})",
            hint="save the route file as UTF-8",
            code="read",
        )
    except OSError as exc:
        return None, Diagnostic(
            label,
            None,
            None,
            f"cannot read file: {exc.strerror or exc}",
            hint="check that the file exists and is readable",
            code="read",
        )
    return parse_source(label, text)


def to_plain(node: Any) -> Any:
    """A plain-Python copy of a ruamel tree: keys become strings, ruamel scalar types their base type.

    Values YAML can express but JSON cannot (dates, tagged values) are kept so that validation reports
    them as the wrong type.
    """
    if isinstance(node, dict):
        return {str(key): to_plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [to_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _node_start(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return 0, 0
    return lc.line, lc.col


def _find_key(node: CommentedMap, step: str | int) -> Any:
    """The actual mapping key for a plain path step (keys were stringified in `to_plain`)."""
    if step in node:
        return step
    for candidate in node:
        if str(candidate) == str(step):
            return candidate
    raise KeyError(step)


def _child_position(node: Any, step: str | int, *, key: bool) -> tuple[int, int] | None:
    try:
        if isinstance(node, CommentedMap):
            actual = _find_key(node, step)
            line, column = node.lc.key(actual) if key else node.lc.value(actual)
            return line, column
        if isinstance(node, CommentedSeq) and isinstance(step, int):
            line, column = node.lc.item(step)
            return line, column
    except (KeyError, IndexError, TypeError):
        return None
    return None


def _child(node: Any, step: str | int) -> Any:
    try:
        if isinstance(node, CommentedMap):
            return node[_find_key(node, step)]
        if isinstance(node, CommentedSeq) and isinstance(step, int):
            return node[step]
    except (KeyError, IndexError):
        return None
    return None


def _yaml_error(path: str, text: str, exc: YAMLError) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = str(getattr(exc, "problem", "") or "")
    if ("<stream end>" in problem or "end of stream" in problem) and getattr(exc, "context_mark", None):
        # Found only at the end of the file: point at what was left open (the `[`, the quote) instead.
        mark = exc.context_mark  # type: ignore[attr-defined]
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    if isinstance(exc, DuplicateKeyError):
        # ruamel's own message repeats both values; they could be secrets, so name only the key.
        match = _DUPLICATE_KEY.search(str(exc.problem))
        name = match.group("key") if match else "?"
        first = exc.context_mark
        where = f" (first at line {first.line + 1})" if first is not None else ""
        return Diagnostic(
            path,
            line,
            column,
            f'duplicate key "{name}"{where}',
            hint="a key may appear once per mapping; merge or remove the repeated one",
            code="yaml",
        )
    if isinstance(exc, MarkedYAMLError) and mark is not None:
        readable = _indentation_problem(path, text, problem, mark.line, mark.column)
        if readable is not None:
            return readable
    if isinstance(exc, MarkedYAMLError):
        problem = exc.problem or "invalid YAML"
        context = f" {exc.context}" if exc.context else ""
        if exc.context and exc.context_mark is not None and exc.context_mark is not mark:
            context += f" started at line {exc.context_mark.line + 1}"
        problem = problem.replace("found '?'", "found a key")  # '?' is the parser's token for a key
        message = f"invalid YAML: {problem}" + (f" ({context.strip()})" if context else "")
    else:
        message = f"invalid YAML: {exc}"
    return Diagnostic(path, line, column, message, hint=_yaml_hint(message), code="yaml")


def _indentation_problem(path: str, text: str, problem: str, line: int, column: int) -> Diagnostic | None:
    """Two indentation mistakes the parser reports confusingly, told in the user's terms at the line
    where the mistake is (`line`, `column`: the parser's, 0-based); None for anything else."""
    lines = text.splitlines()
    above = _line_above(lines, line)
    if above is None:
        return None
    if problem.startswith("expected the node content, but found '?'") and lines[above].strip() == "-":
        return Diagnostic(
            path,
            above + 1,
            _indent(lines[above]) + 1,
            "invalid YAML: this '-' has nothing after it, and the line below is not indented under it",
            hint="write the item on the dash's line (- provider: mock), or indent its lines past the '-'",
            code="yaml",
        )
    if problem != "mapping values are not allowed here" or line >= len(lines):
        return None
    if lines[line].find(":") != column or not lines[above].partition(":")[2].strip():
        return None  # a value holding ': ' on its own line, or a key above without a value on its line
    # The line above holds `key: value` indented less than this line: YAML read this line as the rest of
    # that value. The mistake is the line whose indentation no other key line of the file uses.
    below, upper = _indent(lines[line]), _indent(lines[above])
    if not upper < below:
        return None
    used = {
        _indent(other) for number, other in enumerate(lines) if number not in (line, above) and _is_key(other)
    }
    if upper not in used and below in used:
        key = lines[above].strip().partition(":")[0]
        return Diagnostic(
            path,
            above + 1,
            upper + 1,
            f"invalid YAML: {key!r} is indented less than the line below it, which then reads as part of "
            "its value",
            hint=_LINE_UP.format(key=key),
            code="yaml",
        )
    key = lines[line].strip().partition(":")[0]
    return Diagnostic(
        path,
        line + 1,
        below + 1,
        f"invalid YAML: {key!r} is indented more than the key above it, so it reads as part of that "
        "key's value",
        hint=_LINE_UP.format(key=key),
        code="yaml",
    )


_LINE_UP = "keys of one mapping must line up at the same indentation: indent {key!r} like its siblings"


def _line_above(lines: Sequence[str], line: int) -> int | None:
    """The index of the nearest line above `line` that holds more than a comment."""
    for number in range(min(line, len(lines)) - 1, -1, -1):
        stripped = lines[number].strip()
        if stripped and not stripped.startswith("#"):
            return number
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_key(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith(("#", "-")) and ":" in stripped


def _yaml_hint(message: str) -> str:
    hints: Sequence[tuple[str, str]] = (
        ("'\\t'", "indent with spaces; YAML does not allow tabs for indentation"),
        ("mapping values are not allowed", "quote a value that contains ': ', or fix the indentation"),
        ("quoted scalar", 'close the quote; inside double quotes escape " as \\"'),
        ("flow sequence", "close the list with ']' (or write it as a block list with '- ')"),
        ("flow mapping", "close the mapping with '}' (or write it as an indented block)"),
        ("alias", "quote values that start with '*' or '&', such as glob patterns"),
        ("block end", "keys of one mapping must line up at the same indentation"),
    )
    for needle, hint in hints:
        if needle in message:
            return hint
    return "check the indentation and quoting near this position"
