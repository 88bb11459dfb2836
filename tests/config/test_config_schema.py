"""The JSON Schema in schemas/ is the one the code validates with, documents every property, and agrees
with the models' defaults; every shipped route file (and the commented example) validates."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway.config import (
    Backoff,
    CircuitBreaker,
    HealthCheck,
    MockOptions,
    PoolLimits,
    ProviderConfig,
    RetryPolicy,
    RouteConfig,
    Target,
    Timeouts,
    load_config,
    routes_schema,
    schema_text,
)
from gateway.config.schema import validate_source
from gateway.config.yaml_source import parse_source

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "routes.schema.json"
PACKAGED_SCHEMA = ROOT / "gateway" / "config" / "routes.schema.json"
ROUTE_FILES = sorted((ROOT / "routes").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schemas/routes.schema.json"


def test_the_code_validates_with_exactly_the_schema_in_schemas_dir() -> None:
    source = SCHEMA_FILE.read_text(encoding="utf-8")
    assert PACKAGED_SCHEMA.read_text(encoding="utf-8") == source, (
        "gateway/config/routes.schema.json is the packaged copy of schemas/routes.schema.json: "
        "copy the file after editing the schema"
    )
    assert schema_text() == source
    assert routes_schema() == json.loads(source)


def test_packaged_schema_is_declared_as_package_data() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = [
        f"{package.replace('.', '/')}/{pattern}".removeprefix("gateway/")
        for package, patterns in package_data.items()
        for pattern in patterns
    ]
    assert any(fnmatch.fnmatch("config/routes.schema.json", pattern) for pattern in shipped), shipped


def test_schema_is_valid_draft_2020_12() -> None:
    schema = routes_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def _properties(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        for name, child in schema.get("properties", {}).items():
            yield f"{path}.{name}", child
        for key, child in schema.items():
            if key != "if":  # a condition's properties are tests, not documentation
                yield from _properties(child, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, child in enumerate(schema):
            yield from _properties(child, f"{path}[{index}]")


def test_every_property_is_described_for_editors() -> None:
    schema = routes_schema()
    defs = schema["$defs"]
    undescribed = []
    for path, child in _properties(schema):
        target = defs[child["$ref"].removeprefix("#/$defs/")] if "$ref" in child else {}
        if not (child.get("description") or target.get("description")):
            undescribed.append(path)
    assert undescribed == []


MODEL_SECTIONS = [
    ("timeouts", Timeouts),
    ("pool", PoolLimits),
    ("backoff", Backoff),
    ("retry", RetryPolicy),
    ("healthCheck", HealthCheck),
    ("circuitBreaker", CircuitBreaker),
    ("mock", MockOptions),
]


@pytest.mark.parametrize(("definition", "model"), MODEL_SECTIONS)
def test_schema_sections_match_model_fields_and_defaults(definition: str, model: type) -> None:
    properties = routes_schema()["$defs"][definition]["properties"]
    defaults = model()
    assert set(properties) == {field.name for field in dataclasses.fields(model)}
    for name, spec in properties.items():
        if "default" in spec:
            expected = getattr(defaults, name)
            written = tuple(spec["default"]) if isinstance(spec["default"], list) else spec["default"]
            assert written == expected, f"{definition}.{name}"


@pytest.mark.parametrize(
    ("definition", "model", "not_in_files"),
    [
        ("provider", ProviderConfig, {"name", "unavailable_reason", "position"}),
        ("route", RouteConfig, {"name", "position"}),
        ("target", Target, {"position"}),
    ],
)
def test_schema_objects_match_model_fields(definition: str, model: type, not_in_files: set[str]) -> None:
    properties = routes_schema()["$defs"][definition]["properties"]
    assert set(properties) == {field.name for field in dataclasses.fields(model)} - not_in_files


@pytest.mark.parametrize("path", ROUTE_FILES, ids=lambda path: path.name)
def test_every_default_route_file_declares_and_passes_the_schema(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == MODELINE
    source, problem = parse_source(str(path), text)
    assert problem is None and source is not None
    assert validate_source(source) == []
    # What an editor does: plain JSON Schema validation, no gateway code.
    assert list(Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).iter_errors(source.data)) == []


def test_default_routes_cover_the_documented_providers() -> None:
    assert [path.name for path in ROUTE_FILES] == [
        "anthropic.yaml",
        "deepseek.yaml",
        "lingyiwanwu.yaml",
        "mock.yaml",
        "ollama.yaml",
    ]


def _uncommented_example(text: str) -> str:
    """The lines between `# example: failover` and `# end of example`, with their first `#` removed."""
    block = text.split("# example: failover\n", 1)[1].split("# end of example", 1)[0]
    return "".join(line.removeprefix("#") + "\n" for line in block.splitlines())


def test_commented_failover_example_is_valid_when_uncommented(tmp_path: Path) -> None:
    deepseek = (ROOT / "routes" / "deepseek.yaml").read_text(encoding="utf-8")
    config_dir = tmp_path / "routes"
    originals = {path.name: path.read_text(encoding="utf-8") for path in ROUTE_FILES}
    config_dir.mkdir()
    for name, text in originals.items():
        (config_dir / name).write_text(text, encoding="utf-8")
    # Uncommented in place, the example continues the `routes:` mapping of deepseek.yaml.
    (config_dir / "deepseek.yaml").write_text(deepseek + _uncommented_example(deepseek), encoding="utf-8")
    keys = {"DEEPSEEK_API_KEY": "k", "LINGYIWANWU_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}
    result = load_config([config_dir], environ=keys)
    assert result.ok and result.diagnostics == [], [str(d) for d in result.diagnostics]
    assert result.config is not None
    chat = next(route for route in result.config.routes if route.name == "chat")
    assert [target.provider for target in chat.targets] == ["deepseek", "ollama"]
    assert chat.retry is not None and chat.retry.attempts == 2 and chat.retry.deadline == 60.0
    assert chat.retry.retry_on == ("429", "500", "502", "503", "504", "connect_error", "timeout")
    assert chat.timeouts is not None and chat.timeouts.first_byte == 20.0
