"""`gateway schema` prints the JSON Schema the gateway validates with, byte for byte.

(That `schemas/routes.schema.json` is the packaged copy the loader uses, and that every shipped route file
passes it, is pinned in tests/config/test_config_schema.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from gateway.cli import main
from gateway.config import routes_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "routes.schema.json"


def test_schema_command_prints_the_schema_file_the_validator_uses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    printed = capsys.readouterr().out
    assert printed == SCHEMA_FILE.read_text(encoding="utf-8")
    assert json.loads(printed) == routes_schema()


def test_schema_from_the_command_line_validates_the_shipped_routes_with_a_plain_validator() -> None:
    """What an editor or a CI step does with `gateway schema > routes.schema.json`."""
    printed = subprocess.run(
        [sys.executable, "-m", "gateway", "schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    validator = Draft202012Validator(json.loads(printed))
    files = sorted((ROOT / "routes").glob("*.yaml"))
    assert files
    for path in files:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        assert list(validator.iter_errors(data)) == [], path
    broken = {"providers": {"x": {"type": "openai", "base_url": 5}}}
    assert list(validator.iter_errors(broken))  # and it is a real check
