"""Check objects against OpenAI's published schemas (tests/data/chat-schemas.json, see its README).

Each validator is built once per process (`schema_document.SchemaDocument`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.schema_document import SchemaDocument

SCHEMAS_PATH = Path(__file__).parent.parent / "data" / "chat-schemas.json"


CHAT_SCHEMAS = SchemaDocument(SCHEMAS_PATH, "components/schemas")
validate = CHAT_SCHEMAS.validate


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
