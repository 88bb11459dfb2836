"""Check objects against OpenAI's published schemas (tests/data/chat-schemas.json, see its README).

The validators are built once per process: the schema document is ~100 kB and building a validator
resolves its references, which is too slow to redo per assertion in streaming tests.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

SCHEMAS_PATH = Path(__file__).parent.parent / "data" / "chat-schemas.json"


@functools.cache
def _registry() -> referencing.Registry:
    document = json.loads(SCHEMAS_PATH.read_text(encoding="utf-8"))
    resource = referencing.Resource.from_contents(
        document, default_specification=referencing.jsonschema.DRAFT202012
    )
    return referencing.Registry().with_resource("openai", resource)


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    """The validator of component schema `name`, e.g. "CreateChatCompletionResponse"."""
    return jsonschema.Draft202012Validator(
        {"$ref": f"openai#/components/schemas/{name}"}, registry=_registry()
    )


def validate(name: str, obj: Any) -> None:
    """Raise `jsonschema.ValidationError` (the most relevant one) when `obj` is not a valid `name`."""
    error = jsonschema.exceptions.best_match(validator(name).iter_errors(obj))
    if error is not None:
        raise error


def validate_chat_request(obj: Any) -> None:
    validate("CreateChatCompletionRequest", obj)


def validate_chat_completion(obj: Any) -> None:
    validate("CreateChatCompletionResponse", obj)


def validate_chat_chunk(obj: Any) -> None:
    validate("CreateChatCompletionStreamResponse", obj)


def validate_model_list(obj: Any) -> None:
    validate("ListModelsResponse", obj)


def validate_error(obj: Any) -> None:
    validate("ErrorResponse", obj)


def validate_embedding_response(obj: Any) -> None:
    validate("CreateEmbeddingResponse", obj)
