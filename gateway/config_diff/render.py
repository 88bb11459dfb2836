"""A diff as text (one line per change, grouped), JSON (schema 1, documented in docs/gitops.md) or
Markdown (a short summary for a pull request comment)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from gateway.config.placeholders import shown_value

from .compare import Change, Move
from .flatten import Secret, Value
from .snapshot import GROUPS

JSON_SCHEMA_VERSION = 1
SINGULAR = {
    "models": "model",
    "routes": "route",
    "providers": "provider",
    "keys": "key",
    "prices": "price",
    "settings": "settings",
}
SIGILS = {"added": "+", "removed": "-", "changed": "~"}
MARKDOWN_ROWS = 50  # a pull request comment stays short; the rest is in the job's text output


@dataclass(frozen=True, slots=True)
class SideInfo:
    label: str
    version: str
    files: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Diff:
    old: SideInfo
    new: SideInfo
    changes: list[Change]
    moves: list[Move]

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        found = Counter(change.group for change in self.changes)
        return {group: found[group] for group in GROUPS if found[group]}

    def summary(self) -> str:
        if self.changes:
            counts = ", ".join(f"{group} {number}" for group, number in self.counts().items())
            return f"routing changed: {_plural(len(self.changes), 'change')} ({counts})"
        if self.old.version == self.new.version:
            return "no change: the same files"
        return "no routing change: the files differ only in text (comments, order, layout, files)"


def show(value: Value) -> str:
    """A value as printed: `none`, `true`, `2.5`, `[a, b]`; placeholders as the `${VAR}` they stand for."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "[" + ", ".join(show(item) for item in value) + "]"
    if isinstance(value, Secret):
        return "(secret)"
    return shown_value(str(value))


def describe(change: Change) -> str:
    """What changed, without the places: `retry.attempts: 2 -> 3`, `api_key: secret changed`."""
    if change.field is None:
        return show(change.new if change.kind == "added" else change.old)
    if isinstance(change.old, Secret) or isinstance(change.new, Secret):
        return f"{change.field}: secret {change.kind}"
    before = "(absent)" if change.kind == "added" else show(change.old)
    after = "(absent)" if change.kind == "removed" else show(change.new)
    return f"{change.field}: {before} -> {after}"


def places(old_at: str | None, new_at: str | None) -> str:
    parts = [f"old {old_at}" if old_at else "", f"new {new_at}" if new_at else ""]
    return " -> ".join(part for part in parts if part)


def render_text(diff: Diff) -> str:
    lines = [
        f"old: {diff.old.label} (version {diff.old.version})",
        f"new: {diff.new.label} (version {diff.new.version})",
    ]
    for group in GROUPS:
        changes = [change for change in diff.changes if change.group == group]
        if not changes:
            continue
        lines.append(f"{group}:")
        noted: set[str] = set()
        for change in changes:
            where = places(change.old_at, change.new_at)
            lines.append(
                f"  {SIGILS[change.kind]} {_entity(change.group, change.name)}: {describe(change)}"
                + (f"  ({where})" if where else "")
            )
            if change.note and change.name not in noted:
                noted.add(change.name)
                lines.append(f"      {change.note}")
    if diff.moves:
        lines.append("moved, no effect:")
        lines += [
            f"  {SINGULAR[move.group]} {move.name}  ({places(move.old_at, move.new_at)})"
            for move in diff.moves
        ]
    lines.append(diff.summary())
    return "\n".join(lines) + "\n"


def as_json(diff: Diff, exit_code: int) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA_VERSION,
        "changed": diff.changed,
        "exit_code": exit_code,
        "summary": diff.summary(),
        "old": _side_json(diff.old),
        "new": _side_json(diff.new),
        "counts": diff.counts(),
        "changes": [_change_json(change) for change in diff.changes],
        "moved": [
            {"group": move.group, "name": move.name, "old_at": move.old_at, "new_at": move.new_at}
            for move in diff.moves
        ],
    }


def _side_json(side: SideInfo) -> dict[str, Any]:
    return {"label": side.label, "version": side.version, "files": list(side.files)}


def _change_json(change: Change) -> dict[str, Any]:
    secret = isinstance(change.old, Secret) or isinstance(change.new, Secret)
    return {
        "group": change.group,
        "name": change.name,
        "kind": change.kind,
        "field": change.field,
        "old": None if secret else _json_value(change.old),
        "new": None if secret else _json_value(change.new),
        "secret": secret,
        "old_at": change.old_at,
        "new_at": change.new_at,
        "note": change.note or None,
    }


def _json_value(value: Value) -> Any:
    if isinstance(value, tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, str):
        return shown_value(value)
    return value


def render_markdown(diff: Diff) -> str:
    title = "Gateway routing changed" if diff.changed else "No gateway routing change"
    lines = [
        f"### {title}",
        "",
        f"`{diff.old.label}` ({diff.old.version}) → `{diff.new.label}` ({diff.new.version})",
        "",
        _markdown_counts(diff),
    ]
    if diff.changes:
        lines += ["", "| | what | change | where |", "|---|---|---|---|"]
        for change in diff.changes[:MARKDOWN_ROWS]:
            lines.append(
                f"| {SIGILS[change.kind]} | {_markdown_entity(change.group, change.name)} | "
                f"{_cell(describe(change))} | {_cell(places(change.old_at, change.new_at))} |"
            )
        if len(diff.changes) > MARKDOWN_ROWS:
            lines += [
                "",
                f"…and {len(diff.changes) - MARKDOWN_ROWS} more (see `gateway diff` in the job log).",
            ]
    if diff.moves:
        lines += [
            "",
            "Moved to another file, no effect: "
            + ", ".join(f"{SINGULAR[move.group]} `{_cell(move.name)}`" for move in diff.moves),
        ]
    return "\n".join(lines) + "\n"


def _entity(group: str, name: str) -> str:
    return group if group == "settings" else f"{SINGULAR[group]} {name}"


def _markdown_counts(diff: Diff) -> str:
    if not diff.changes:
        return diff.summary()[0].upper() + diff.summary()[1:] + "."
    counts = ", ".join(f"{group} {number}" for group, number in diff.counts().items())
    return f"**{_plural(len(diff.changes), 'change')}** ({counts})"


def _markdown_entity(group: str, name: str) -> str:
    return group if group == "settings" else f"{SINGULAR[group]} `{_cell(name)}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _plural(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"
