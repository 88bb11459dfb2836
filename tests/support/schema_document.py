"""One vendored JSON Schema document (OpenAI's OpenAPI components, Anthropic's `$defs`), validating objects
against its named schemas. The document and each validator are built once per process: a document is
~100 kB and building a validator resolves its references, too slow to redo per assertion in streams."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema


class SchemaDocument:
    """`path`'s schemas under `section` (a JSON pointer such as `components/schemas` or `$defs`)."""

    def __init__(self, path: Path, section: str) -> None:
        self.path = path
        self.section = section
        self._validators: dict[str, jsonschema.Draft202012Validator] = {}

    @functools.cached_property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return document

    @property
    def schemas(self) -> dict[str, Any]:
        node: Any = self.document
        for step in self.section.split("/"):
            node = node[step]
        return dict(node)

    @functools.cached_property
    def _registry(self) -> referencing.Registry:
        resource = referencing.Resource.from_contents(
            self.document, default_specification=referencing.jsonschema.DRAFT202012
        )
        return referencing.Registry().with_resource("document", resource)

    def validator(self, name: str) -> jsonschema.Draft202012Validator:
        """The validator of schema `name` ("CreateChatCompletionResponse", "Message"); KeyError if none."""
        found = self._validators.get(name)
        if found is None:
            if name not in self.schemas:
                raise KeyError(f"no schema {name!r} under {self.section} in {self.path}")
            found = jsonschema.Draft202012Validator(
                {"$ref": f"document#/{self.section}/{name}"}, registry=self._registry
            )
            self._validators[name] = found
        return found

    def validate(self, name: str, obj: Any) -> None:
        """Raise `jsonschema.ValidationError` (the most relevant one) when `obj` is not a valid `name`."""
        error = jsonschema.exceptions.best_match(self.validator(name).iter_errors(obj))
        if error is not None:
            raise error
