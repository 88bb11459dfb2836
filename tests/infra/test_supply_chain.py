"""The pinned supply chain: `requirements.lock` pins every runtime dependency of pyproject.toml and its
build backend, with hashes, inside the ranges pyproject states, and the Dockerfile installs from it
(--require-hashes) before it builds and installs the package without fetching anything else.

Regenerating the lock is a `pip-compile` run (its header gives the command); these tests catch a lock that
fell behind pyproject.toml, one that names this machine's package index, and a Dockerfile that resolves
dependencies on its own.
"""

from __future__ import annotations

import itertools
import re
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK = REPO_ROOT / "requirements.lock"
DOCKERFILE = REPO_ROOT / "Dockerfile"


@dataclass
class Pin:
    version: Version
    hashes: list[str] = field(default_factory=list)  # "sha256:<hex>" each


def parse_lock(text: str) -> dict[str, Pin]:
    """Canonical name -> pin, from pip-compile's format (`name==version \\` then `--hash=...` lines)."""
    pins: dict[str, Pin] = {}
    joined = re.sub(r"\\\n", " ", text)
    for raw in joined.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = shlex.split(line)
        name, separator, version = words[0].partition("==")
        assert separator, f"not pinned with ==: {line!r}"
        name = name.split("[", 1)[0]
        hashes = [word.removeprefix("--hash=") for word in words[1:] if word.startswith("--hash=")]
        pins[canonicalize_name(name)] = Pin(Version(version), hashes)
    return pins


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(spec) for spec in project["dependencies"]]


def build_requirements() -> list[Requirement]:
    build_system = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    return [Requirement(spec) for spec in build_system["requires"]]


@pytest.fixture(scope="module")
def lock_text() -> str:
    return LOCK.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def pins(lock_text: str) -> dict[str, Pin]:
    return parse_lock(lock_text)


def test_parse_lock_reads_pins_and_hashes() -> None:
    text = "# header\nfoo-bar==1.2.0 \\\n    --hash=sha256:ab \\\n    --hash=sha256:cd\n    # via x\nbaz==2\n"
    assert parse_lock(text) == {
        "foo-bar": Pin(Version("1.2.0"), ["sha256:ab", "sha256:cd"]),
        "baz": Pin(Version("2")),
    }
    with pytest.raises(AssertionError, match="not pinned"):
        parse_lock("foo>=1\n")


@pytest.mark.parametrize("requirements", [runtime_requirements, build_requirements], ids=["runtime", "build"])
def test_lock_pins_every_dependency_within_its_range(
    pins: dict[str, Pin], requirements: Callable[[], list[Requirement]]
) -> None:
    """Runtime dependencies, and the build backend the image builds the package with."""
    stated = requirements()
    assert stated, f"pyproject.toml names no {requirements.__name__}"
    for requirement in stated:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock: regenerate it"
        pin = pins[name]
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"requirements.lock pins {name}=={pin.version}, outside {requirement} in pyproject.toml"
        )


def test_lock_pins_what_the_extras_bring(pins: dict[str, Pin]) -> None:
    """`uvicorn[standard]` brings uvloop, httptools and the rest: those are in the lock too."""
    with_extras = [requirement for requirement in runtime_requirements() if requirement.extras]
    assert with_extras, "no runtime dependency with extras: drop this test"
    for requirement in with_extras:
        for spec in metadata.requires(requirement.name) or []:
            brought = Requirement(spec)
            applies = brought.marker is not None and any(
                brought.marker.evaluate({"extra": extra}) for extra in requirement.extras
            )
            if applies:
                assert canonicalize_name(brought.name) in pins, f"{brought.name} (from {requirement})"


def test_every_pin_carries_a_sha256_hash(pins: dict[str, Pin]) -> None:
    for name, pin in pins.items():
        assert pin.hashes, f"{name} has no hash: pip install --require-hashes refuses it"
        for digest in pin.hashes:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{name}: {digest}"


def test_lock_names_no_index_and_says_how_to_regenerate(lock_text: str) -> None:
    assert "://" not in lock_text, "the lock must not name a package index (pip-compile --no-emit-index-url)"
    options = [line.split()[0] for line in lock_text.splitlines() if line.startswith("-")]
    assert options == [], f"index or find-links options in the lock: {options}"
    header = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), lock_text.splitlines()))
    assert "pip-compile --generate-hashes" in header, "the lock's header must say how to regenerate it"


def dockerfile_runs() -> list[str]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [line.split(None, 1)[1] for line in instructions if line.split(None, 1)[0].upper() == "RUN"]


def pip_installs(run: str) -> list[list[str]]:
    """The argument lists of each `pip install` in one RUN's shell command."""
    commands = re.split(r"&&|;|\|\|", run)
    return [words[2:] for words in map(shlex.split, commands) if words[:2] == ["pip", "install"]]


def test_dockerfile_installs_the_lock_with_hashes_before_the_package() -> None:
    installs = [arguments for run in dockerfile_runs() for arguments in pip_installs(run)]
    assert installs, "the Dockerfile runs no pip install"
    locked = [i for i, arguments in enumerate(installs) if "--require-hashes" in arguments]
    package = [i for i, arguments in enumerate(installs) if "." in arguments]
    assert len(locked) == 1 and len(package) == 1, installs
    [lock_install], [package_install] = locked, package
    arguments = installs[lock_install]
    assert arguments[arguments.index("-r") + 1] == "requirements.lock"
    assert lock_install < package_install, "the lock must be installed before the package"
    assert "--no-deps" in installs[package_install], "the package must not resolve dependencies itself"
    assert "--no-build-isolation" in installs[package_install], "the build must use the locked setuptools"
    resolving = [a for i, a in enumerate(installs) if i != lock_install and "--no-deps" not in a]
    assert resolving == [], f"pip installs that resolve dependencies outside the lock: {resolving}"
