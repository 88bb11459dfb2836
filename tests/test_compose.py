"""docker-compose.yaml, Dockerfile and .dockerignore, checked without a Docker daemon.

The compose file is validated against the Compose specification's JSON Schema (tests/data, draft-07); the
rest are the promises a deployment relies on: what the container runs, what it mounts, which secrets it
passes through, that its health check really probes the gateway, and that `pip install .` in the image
ships every file the package reads.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from ruamel.yaml import YAML

from gateway.cli import build_parser
from tests.support.harness import REPO_ROOT, RunningGateway, free_port

COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE_SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return YAML(typ="safe", pure=True).load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def gateway_service(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]["gateway"]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def dockerfile_json_form(instruction: str) -> list[str]:
    [arguments] = [args for name, args in dockerfile_instructions() if name == instruction]
    return json.loads(arguments[arguments.index("[") :])


def test_compose_file_matches_the_compose_spec(compose: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8")))
    assert [error.message for error in validator.iter_errors(compose)] == []
    # The schema is strict enough to catch a slip in our file.
    broken = copy.deepcopy(compose)
    broken["services"]["gateway"]["healthchek"] = broken["services"]["gateway"].pop("healthcheck")
    assert not validator.is_valid(broken)


def test_gateway_service_serves_the_mounted_routes_on_9000(gateway_service: dict[str, Any]) -> None:
    assert (
        REPO_ROOT / gateway_service["build"]["context"] / gateway_service["build"]["dockerfile"]
    ).is_file()
    command = gateway_service["command"]
    assert command[:2] == ["gateway", "serve"]
    args = build_parser().parse_args(command[1:])  # the flags exist and parse
    assert (args.host, args.port) == ("0.0.0.0", 9000)
    assert any(port.endswith(":9000:9000") for port in gateway_service["ports"])

    [routes] = [volume for volume in gateway_service["volumes"] if volume["target"] == args.config]
    assert routes == {"type": "bind", "source": "./routes", "target": "/app/routes", "read_only": True}
    assert (REPO_ROOT / "routes").is_dir()


def test_every_secret_the_routes_reference_is_passed_through(gateway_service: dict[str, Any]) -> None:
    environment = gateway_service["environment"]
    referenced = set()
    for route_file in (REPO_ROOT / "routes").glob("*.yaml"):
        referenced |= set(
            re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", route_file.read_text(encoding="utf-8"))
        )
    assert referenced, "the example routes reference no environment variable"
    assert referenced | {
        "DEEPSEEK_API_KEY",
        "LINGYIWANWU_API_KEY",
        "ANTHROPIC_API_KEY",
        "API_KEY",
        "LOG_LEVEL",
    } <= set(environment)
    for name in referenced | {"DEEPSEEK_API_KEY", "LINGYIWANWU_API_KEY", "ANTHROPIC_API_KEY", "API_KEY"}:
        assert environment[name] is None, f"{name} must be passed through from the host, not set here"


def test_redis_holds_shared_state(compose: dict[str, Any], gateway_service: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert gateway_service["depends_on"]["redis"]["condition"] == "service_healthy"
    store = urlsplit(gateway_service["environment"]["GATEWAY_STATS_STORE"])
    assert (store.scheme, store.hostname, store.port) == ("redis", "redis", 6379)


def test_dockerfile_installs_the_package_and_runs_the_same_command(gateway_service: dict[str, Any]) -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert any(name == "RUN" and re.search(r"\bpip install \.(\s|$)", args) for name, args in instructions)
    assert dockerfile_json_form("CMD") == gateway_service["command"]
    assert ("EXPOSE", "9000") in instructions
    [user] = [args for name, args in instructions if name == "USER"]
    assert user not in ("root", "0")


def test_dockerfile_copies_what_the_build_needs_and_dockerignore_keeps_it() -> None:
    ignored = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for name, args in dockerfile_instructions():
        if name == "COPY":
            *sources, _destination = shlex.split(args)
            copied += sources
    for source in copied:
        assert (REPO_ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), (
            f"{source} is in .dockerignore"
        )
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert {"pyproject.toml", project["readme"], "gateway", "routes"} <= set(copied)
    assert {"tests", ".venv", ".git"} <= set(ignored)


def test_pip_install_ships_every_data_file_of_the_package() -> None:
    """The image uses `pip install .` (not editable): a file the package reads must be package data."""
    setuptools = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]
    patterns = setuptools.get("package-data", {}).get("gateway", [])
    package = REPO_ROOT / "gateway"
    data_files = [
        path.relative_to(package).as_posix()
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]
    missing = [name for name in data_files if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns)]
    assert missing == [], f"add to [tool.setuptools.package-data]: {missing}"


@pytest.mark.timeout(60)
def test_health_check_one_liner_probes_a_real_gateway(
    gateway_service: dict[str, Any], sim_gateway: RunningGateway
) -> None:
    test = gateway_service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]  # python:3.11-slim has no curl
    assert dockerfile_json_form("HEALTHCHECK")[-3:] == test[1:]
    code = test[3]
    assert "http://127.0.0.1:9000/health" in code

    def probe(port: int) -> int:
        patched = code.replace(":9000/", f":{port}/")
        return subprocess.run([sys.executable, "-c", patched], capture_output=True, timeout=30).returncode

    assert probe(sim_gateway.port) == 0
    assert probe(free_port()) != 0
