"""Two snapshots -> the list of effective changes, and the entities that only moved to another file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .flatten import Value
from .snapshot import GROUPS, Entity, Snapshot

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class Change:
    """One effective difference. `field` is None for a whole entity added or removed (then `old`/`new`
    is its one-line summary)."""

    group: str  # one of GROUPS
    name: str
    kind: ChangeKind
    field: str | None
    old: Value
    new: Value
    old_at: str | None
    new_at: str | None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Move:
    """An entity defined in another file, otherwise the same: no routing change."""

    group: str
    name: str
    old_at: str | None
    new_at: str | None


def compare(old: Snapshot, new: Snapshot) -> tuple[list[Change], list[Move]]:
    changes: list[Change] = []
    moves: list[Move] = []
    for group in GROUPS:
        before, after = old[group], new[group]
        for name in sorted(before.keys() | after.keys()):
            was, now = before.get(name), after.get(name)
            if was is None and now is not None:
                changes.append(Change(group, name, "added", None, None, now.summary, None, now.at, now.note))
            elif now is None and was is not None:
                changes.append(
                    Change(group, name, "removed", None, was.summary, None, was.at, None, was.note)
                )
            elif was is not None and now is not None:
                found = _fields(group, name, was, now)
                changes.extend(found)
                if not found and was.file != now.file:
                    moves.append(Move(group, name, was.at, now.at))
    return changes, moves


def _fields(group: str, name: str, was: Entity, now: Entity) -> list[Change]:
    changes: list[Change] = []
    for field in [*now.fields, *(field for field in was.fields if field not in now.fields)]:
        present_before, present_now = field in was.fields, field in now.fields
        before, after = was.fields.get(field), now.fields.get(field)
        if present_before and present_now and before == after:
            continue
        kind: ChangeKind = (
            "changed" if present_before and present_now else "added" if present_now else "removed"
        )
        changes.append(
            Change(
                group,
                name,
                kind,
                field,
                before,
                after,
                was.places.get(field, was.at),
                now.places.get(field, now.at),
                now.note,
            )
        )
    return changes
