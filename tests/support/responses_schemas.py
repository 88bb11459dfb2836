"""Check objects against OpenAI's published Responses schemas (tests/data/openai/responses-schemas.json).

Built like `openai_schemas.py`: one registry and one validator per root, per process.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

SCHEMAS_PATH = Path(__file__).parent.parent / "data" / "openai" / "responses-schemas.json"


@functools.cache
def _registry() -> referencing.Registry:
    document = json.loads(SCHEMAS_PATH.read_text(encoding="utf-8"))
    resource = referencing.Resource.from_contents(
        document, default_specification=referencing.jsonschema.DRAFT202012
    )
    return referencing.Registry().with_resource("openai", resource)


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """The validator of component schema `name`, e.g. "Response"."""
    return jsonschema.Draft202012Validator(
        {"$ref": f"openai#/components/schemas/{name}"}, registry=_registry()
    )


def validate(name: str, obj: Any) -> None:
    """Raise `jsonschema.ValidationError` (the most relevant one) when `obj` is not a valid `name`."""
    error = jsonschema.exceptions.best_match(validator(name).iter_errors(obj))
    if error is not None:
        raise error


def validate_response(obj: Any) -> None:
    validate("Response", obj)


def validate_stream_event(obj: Any) -> None:
    """One streamed event, checked against the schema of its own `type` (the union's errors are vague)."""
    validate(_event_schemas()[obj["type"]], obj)


@functools.cache
def _event_schemas() -> dict[str, str]:
    """Each stream event's `type` -> its component schema name, read from `ResponseStreamEvent`."""
    document = json.loads(SCHEMAS_PATH.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    out: dict[str, str] = {}
    for option in schemas["ResponseStreamEvent"]["anyOf"]:
        name = option["$ref"].rsplit("/", 1)[-1]
        for kind in schemas[name]["properties"]["type"]["enum"]:
            out[kind] = name
    return out
