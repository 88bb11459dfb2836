"""Check objects against OpenAI's published Responses schemas (tests/data/openai/responses-schemas.json).

One registry and one validator per root, per process (`schema_document.SchemaDocument`).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from tests.support.schema_document import SchemaDocument

SCHEMAS_PATH = Path(__file__).parent.parent / "data" / "openai" / "responses-schemas.json"
RESPONSES_SCHEMAS = SchemaDocument(SCHEMAS_PATH, "components/schemas")
validate = RESPONSES_SCHEMAS.validate


def validate_response(obj: Any) -> None:
    validate("Response", obj)


def validate_stream_event(obj: Any) -> None:
    """One streamed event, checked against the schema of its own `type` (the union's errors are vague)."""
    validate(_event_schemas()[obj["type"]], obj)


@functools.cache
def _event_schemas() -> dict[str, str]:
    """Each stream event's `type` -> its component schema name, read from `ResponseStreamEvent`."""
    schemas = RESPONSES_SCHEMAS.schemas
    out: dict[str, str] = {}
    for option in schemas["ResponseStreamEvent"]["anyOf"]:
        name = option["$ref"].rsplit("/", 1)[-1]
        for kind in schemas[name]["properties"]["type"]["enum"]:
            out[kind] = name
    return out
