"""Validate a route file against the JSON Schema and turn each violation into a positioned diagnostic.

The schema is `schemas/routes.schema.json` in the repository; an identical copy ships inside the package
(`gateway/config/routes.schema.json`) so an installed gateway validates with the same file (a test keeps
the two byte-identical). Messages come from the schema where it has them (`patternErrorMessage`,
`errorMessage`, the vscode-json-languageservice extensions editors show too) and hints from the
`description` of the property, so editors and `gateway validate-config` explain the same way.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from .diagnostics import Diagnostic
from .interpolate import InterpolationError, interpolate
from .yaml_source import DocumentPath, SourceFile

SCHEMA_RESOURCE = "routes.schema.json"

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z`$])")
# Values under these keys are (or may hold) secrets: never repeat them in a message.
_SECRET_KEYS = frozenset({"api_key", "headers", "keys"})


def schema_text() -> str:
    """The packaged schema, exactly as shipped (what `gateway schema` prints)."""
    return resources.files("gateway.config").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


@functools.cache
def routes_schema() -> dict[str, Any]:
    """The parsed schema. Cached: it is a constant of the installed package, not runtime state."""
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(routes_schema())


def validate_source(source: SourceFile) -> list[Diagnostic]:
    """Schema diagnostics for one parsed file, sorted by position, one per distinct problem."""
    found: dict[tuple[int, int, str], Diagnostic] = {}
    for error in _validator().iter_errors(source.data):
        for diagnostic in _diagnostics_for(error, source):
            found.setdefault((diagnostic.line or 0, diagnostic.column or 0, diagnostic.message), diagnostic)
    return sorted(found.values(), key=Diagnostic.sort_key)


def property_schema(path: DocumentPath) -> dict[str, Any]:
    """The schema that applies at a document path, with `$ref` resolved and siblings of a `$ref` (its
    own description, messages) laid over the referenced schema. Empty when the path is not described."""
    root = routes_schema()
    schema = _resolve(root, root)
    for step in path:
        if isinstance(step, int):
            child = schema.get("items")
        else:
            child = schema.get("properties", {}).get(step)
            if child is None:
                child = schema.get("additionalProperties")
        if not isinstance(child, dict):
            return {}
        schema = _resolve(root, child)
    return schema


def _resolve(root: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        target = root["$defs"][name]
        schema = {**target, **{key: value for key, value in schema.items() if key != "$ref"}}
    return schema


def _diagnostics_for(error: ValidationError, source: SourceFile) -> list[Diagnostic]:
    path: DocumentPath = tuple(error.absolute_path)
    validator = str(error.validator)
    # Set on every error a validator yields; the stubs allow `Unset` only for errors built by hand.
    instance: Any = error.instance
    expected: Any = error.validator_value

    def at(where: DocumentPath, message: str, hint: str, *, key: bool = False) -> Diagnostic:
        line, column = source.position(where, key=key)
        return Diagnostic(source.path, line, column, message, hint=hint, code="schema")

    if "propertyNames" in error.absolute_schema_path:
        name = str(error.instance)
        own = error.schema if isinstance(error.schema, dict) else {}
        message = f"invalid name {name!r} in {_where(path)}"
        hint = own.get("patternErrorMessage") or "names must not be empty"
        return [at((*path, name), message, hint, key=True)]
    if validator == "additionalProperties":
        allowed = sorted(property_schema(path).get("properties", {}))
        extras = [key for key in instance if key not in allowed]
        return [
            at(
                (*path, extra),
                f"unknown key {extra!r} in {_where(path)}",
                _unknown_key_hint(extra, allowed),
                key=True,
            )
            for extra in extras
        ]
    if validator == "required":
        missing = [name for name in expected if name not in instance]
        return [
            at(
                path,
                f"{_where(path)} is missing the required key {name!r}",
                _first_sentence(property_schema((*path, name)).get("description", "")),
                key=True,
            )
            for name in missing
        ]
    if validator == "pattern" and isinstance(error.instance, str):
        broken = _broken_reference(error.instance)
        if broken is not None:  # a mistyped `${VAR`, not a literal secret: say so
            return [at(path, f"{_where(path)}: {broken.message}", broken.hint)]
    schema = property_schema(path)
    hint = _first_sentence(schema.get("description", ""))
    return [at(path, _message(error, path, schema), hint)]


def _broken_reference(text: str) -> InterpolationError | None:
    """Why `text` is a malformed `${...}` reference (unclosed, bad name), or None."""
    try:
        interpolate(text, {})
    except InterpolationError as exc:
        return exc
    return None


def _message(error: ValidationError, path: DocumentPath, schema: dict[str, Any]) -> str:
    where = _where(path)
    validator = str(error.validator)
    expected: Any = error.validator_value  # set on every error a validator yields (see above)
    shown = _show(error.instance, path)
    if validator == "pattern":
        custom = schema.get("patternErrorMessage")
        return f"{where}: {custom}" if custom else f"{where}: {shown} does not have the expected form"
    if schema.get("errorMessage"):
        return f"{where}: {schema['errorMessage']}"
    if validator == "type":
        kinds = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(kind, kind) for kind in kinds)
        return f"{where} must be {wanted}, not {_kind(error.instance)}"
    if validator == "enum":
        choices = ", ".join(str(choice) for choice in expected)
        guess = difflib.get_close_matches(str(error.instance), [str(c) for c in expected], n=1)
        suffix = f"; did you mean {guess[0]!r}?" if guess else ""
        return f"{where} must be one of: {choices} (got {shown}){suffix}"
    if validator == "const":
        return f"{where} must be {expected!r} (got {shown})"
    bounds = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}
    if validator in bounds:
        return f"{where} must be {bounds[validator]} {expected} (got {shown})"
    if validator in ("minItems", "minLength") and expected == 1:
        return f"{where} must not be empty"
    if validator == "minItems":
        return f"{where} needs at least {expected} entries"
    return f"{where} is not valid here"


def _unknown_key_hint(key: str, allowed: list[str]) -> str:
    guess = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if guess:
        return f"did you mean {guess[0]!r}?"
    if allowed:
        return "allowed keys: " + ", ".join(allowed)
    return "remove this key"


def _where(path: DocumentPath) -> str:
    if not path:
        return "the route file"
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _show(value: Any, path: DocumentPath) -> str:
    if any(step in _SECRET_KEYS for step in path):
        return "a hidden value"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, bool | int | float) or value is None:
        return json.dumps(value)
    return _kind(value)


def _kind(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "true/false"
    for python_type, name in ((dict, "a mapping"), (list, "a list"), (str, "a string"), (int, "an integer")):
        if isinstance(value, python_type):
            return name
    if isinstance(value, float):
        return "a number"
    return f"a YAML {type(value).__name__}"


def _first_sentence(text: str) -> str:
    """Up to the first full stop that ends a sentence (not the one in "e.g. x")."""
    end = _SENTENCE_END.search(text)
    return text if end is None else text[: end.start() + 1]
