"""Route test files: expectations about how a config routes requests, read with their positions.

    # routes/tests/routing.yaml
    tests:
      - model: deepseek-chat            # what a client sends
        key: search-team                # optional: a key of the config, by name
        api: chat                       # chat (default), messages, responses, embeddings, completions
        expect:
          route: deepseek-chat          # null: no route serves it in that API (404)
          targets: [deepseek, local/qwen2.5, {provider: claude, translation: translated}]
          allowed: true                 # false: 403 model_not_allowed for this key
          limits: {requests_per_minute: 600, tokens_per_day: {limit: 2000000, mode: shadow}}
          price: {input: 0.27, output: 1.1}   # per million tokens, of the first target; null: unpriced

The files live apart from route files (`routes/tests/` by default: the loader and the watcher read only
the top of a config directory). Each file is checked against `EXPECTATIONS_SCHEMA` (a JSON Schema), every
problem at file:line:col; `gateway test` (route_test_command.py) checks the expectations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from gateway.config import Diagnostic, Position
from gateway.config.apis import SHORT_NAMES
from gateway.config.models import LIMIT_NAMES, ApiName
from gateway.config.yaml_source import DocumentPath, SourceFile, read_source

_PRICE = {"type": "number", "minimum": 0}
_LIMIT_VALUE = {"type": "integer", "minimum": 1}
EXPECTATIONS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "gateway route tests",
    "type": "object",
    "additionalProperties": False,
    "required": ["tests"],
    "properties": {"tests": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/test"}}},
    "$defs": {
        "test": {
            "type": "object",
            "additionalProperties": False,
            "required": ["model", "expect"],
            "properties": {
                "name": {"type": "string"},
                "model": {"type": "string", "minLength": 1},
                "key": {"type": "string", "minLength": 1},
                "api": {"enum": list(SHORT_NAMES)},
                "expect": {"$ref": "#/$defs/expect"},
            },
        },
        "expect": {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "route": {"type": ["string", "null"]},
                "targets": {"type": "array", "items": {"$ref": "#/$defs/target"}},
                "allowed": {"type": "boolean"},
                "limits": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {name: {"$ref": "#/$defs/limit"} for name in LIMIT_NAMES},
                },
                "price": {
                    "type": ["object", "null"],
                    "additionalProperties": False,
                    "required": ["input"],
                    "properties": {
                        name: _PRICE for name in ("input", "output", "cached_input", "cache_write")
                    },
                },
            },
        },
        "target": {  # `provider`, `provider/model`, or a mapping
            "type": ["string", "object"],
            "minLength": 1,
            "additionalProperties": False,
            "required": ["provider"],
            "properties": {
                "provider": {"type": "string", "minLength": 1},
                "model": {"type": "string", "minLength": 1},
                "translation": {"enum": ["native", "translated"]},
            },
        },
        "limit": {  # a number, null (no such limit), or {limit, mode}
            "type": ["integer", "null", "object"],
            "minimum": 1,
            "additionalProperties": False,
            "required": ["limit"],
            "properties": {"limit": _LIMIT_VALUE, "mode": {"enum": ["enforce", "shadow"]}},
        },
    },
}
_VALIDATOR = Draft202012Validator(EXPECTATIONS_SCHEMA)


@dataclass(frozen=True, slots=True)
class Expected:
    """One expected fact (`route`, `targets`, `allowed`, `limits`, `price`) as written, and where."""

    field: str
    value: Any
    position: Position
    item_positions: tuple[Position, ...] = ()  # of each entry, for `targets`


@dataclass(frozen=True, slots=True)
class RouteTest:
    name: str | None
    model: str
    key: str | None
    api: ApiName
    position: Position  # of the test's entry in `tests:`
    key_position: Position | None
    expected: tuple[Expected, ...]

    def describe(self) -> str:
        """`model 'x' over chat, key 'k'` (prefixed by the test's name when it has one)."""
        text = f"model {self.model!r} over {short_api(self.api)}"
        if self.key is not None:
            text += f", key {self.key!r}"
        return f"{self.name!r}: {text}" if self.name else text


def short_api(api: ApiName) -> str:
    return next(short for short, full in SHORT_NAMES.items() if full == api)


def read_expectations(file: Path) -> tuple[list[RouteTest], list[Diagnostic]]:
    """The tests of one file, or the diagnostics (YAML, schema) that keep it from being read."""
    source, problem = read_source(file, str(file))
    if problem is not None or source is None:
        return [], [problem] if problem is not None else []
    problems = sorted(
        (_diagnostic(error, source) for error in _VALIDATOR.iter_errors(source.data)), key=Diagnostic.sort_key
    )
    if problems:
        return [], problems
    return [_test(source, index, entry) for index, entry in enumerate(source.data["tests"])], []


def _test(source: SourceFile, index: int, entry: dict[str, Any]) -> RouteTest:
    path: DocumentPath = ("tests", index)
    expected = []
    for field, value in entry["expect"].items():
        where: DocumentPath = (*path, "expect", field)
        items = value if field == "targets" else []
        expected.append(
            Expected(
                field,
                value,
                _position(source, where),
                tuple(_position(source, (*where, number)) for number in range(len(items))),
            )
        )
    return RouteTest(
        name=entry.get("name"),
        model=entry["model"],
        key=entry.get("key"),
        api=SHORT_NAMES[entry.get("api", "chat")],
        position=_position(source, path),
        key_position=_position(source, (*path, "key")) if "key" in entry else None,
        expected=tuple(expected),
    )


def _position(source: SourceFile, path: DocumentPath, *, key: bool = False) -> Position:
    line, column = source.position(path, key=key)
    return Position(source.path, line, column)


_TYPES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer"}
_TYPES |= {"number": "a number", "boolean": "true or false", "null": "null"}


def _diagnostic(error: ValidationError, source: SourceFile) -> Diagnostic:
    """A schema violation in the user's terms, at the offending key or value."""
    path: DocumentPath = tuple(error.absolute_path)
    where = _where(path)
    instance: Any = error.instance
    expected: Any = error.validator_value
    at_key = False
    hint = ""
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
        extra = next(name for name in instance if name not in allowed)
        path, at_key = (*path, extra), True
        message = f"unknown key {extra!r} in {where}"
        hint = "allowed keys: " + ", ".join(allowed)
    elif error.validator == "required":
        missing = next(name for name in expected if name not in instance)
        message = f"{where} is missing the required key {missing!r}"
        at_key = bool(path)
    elif error.validator == "type":
        kinds = [expected] if isinstance(expected, str) else list(expected)
        message = f"{where} must be {' or '.join(_TYPES[kind] for kind in kinds)}"
    elif error.validator == "enum":
        message = f"{where} must be one of: {', '.join(map(str, expected))} (got {instance!r})"
    elif error.validator in ("minItems", "minLength", "minProperties"):
        message = f"{where} must not be empty"
    elif error.validator == "minimum":
        message = f"{where} must be >= {expected} (got {instance!r})"
    else:
        message = f"{where} is not valid here ({error.message})"
    line, column = source.position(path, key=at_key)
    return Diagnostic(source.path, line, column, message, hint=hint, code="route-test-schema")


def _where(path: DocumentPath) -> str:
    if not path:
        return "the route test file"
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text
