"""Helpers for the hot-reload tests: versioned route files, the ways tools write them, a steady client.

Each version puts its marker in the mock provider's `mock.text`, so every answer shows which config served
it. Broken versions put their error *before* the marker in the file: no prefix of a half-read file can
be valid and contain the marker, so a marker in an answer proves a broken version was served.
"""

from __future__ import annotations

import os
import shutil
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.support.harness import CLIENT_TIMEOUT

MOCK_BASE_URL = "http://mock.gateway.invalid/v1"
ROUTES_YAML = textwrap.dedent(
    """\
    # yaml-language-server: $schema=../schemas/routes.schema.json
    routes:
      chat:
        aliases: [chat-alias]
        targets:
          - provider: m
    """
)


def provider_yaml(marker: str, *, tokens: int = 3, token_delay: float = 0.0) -> str:
    return textwrap.dedent(
        f"""\
        providers:
          m:
            type: mock
            base_url: {MOCK_BASE_URL}
            mock: {{tokens: {tokens}, token_delay: {token_delay}, text: "{marker}"}}
        """
    )


# Broken versions of providers.yaml, each with the error before the marker.
BROKEN_KINDS: dict[str, Callable[[str], str]] = {
    "bad_yaml": lambda marker: provider_yaml(marker).replace(
        "    type: mock\n", "    type: mock\n    pool: [\n"
    ),
    "schema": lambda marker: provider_yaml(marker).replace("tokens: 3", "tokens: many"),
    "unknown_provider": lambda marker: (
        "routes:\n  other:\n    targets: [{provider: nope}]\n" + provider_yaml(marker)
    ),
    "half_written": lambda marker: provider_yaml(marker + " and more")[: -len(' more"}\n')],
}


def write_atomically(path: Path, text: str) -> None:
    """Editors, `git checkout`, Helm/kubectl tools: write a hidden temp file, rename it over the target."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def write_in_place(path: Path, text: str) -> None:
    """`echo > file` style: truncate, then write the same inode."""
    with open(path, "w") as file:
        file.write(text)


def make_configmap(directory: Path, stamp: str, files: dict[str, str]) -> None:
    """Kubernetes' ConfigMap volume: files in `..<stamp>/`, `..data -> ..<stamp>`, `name -> ..data/name`;
    an update writes a new stamp directory, renames a new link over `..data`, then deletes the old one."""
    data = directory / f"..{stamp}"
    data.mkdir()
    for name, text in files.items():
        (data / name).write_text(text)
    previous = (directory / "..data").resolve() if (directory / "..data").exists() else None
    (directory / "..data_tmp").symlink_to(data.name)
    os.replace(directory / "..data_tmp", directory / "..data")
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")
    if previous is not None:
        shutil.rmtree(previous)


def chat_body(model: str = "chat", *, stream: bool = False) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "which version?"}], "stream": stream}


def answer_text(response: httpx.Response) -> str:
    """The assistant text of a JSON answer or of a whole SSE stream (which must end with [DONE])."""
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        return str(response.json()["choices"][0]["message"]["content"])
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    if not events or events[-1] != "[DONE]":
        raise AssertionError(f"stream did not end with [DONE]: {response.text[-200:]!r}")
    text = ""
    for event in events[:-1]:
        chunk = orjson.loads(event)
        if "error" in chunk:
            raise AssertionError(f"stream ended with an error event: {event}")
        for choice in chunk.get("choices", []):
            text += choice.get("delta", {}).get("content") or ""
    return text


@dataclass
class Answer:
    started: float
    ended: float
    status: int
    text: str


@dataclass
class SteadyClient:
    """Sends requests back to back from a thread until stopped; records every answer and every failure."""

    base_url: str
    stream: bool = False
    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> SteadyClient:
        self._thread = threading.Thread(target=self._run, name="steady-client", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(15)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=CLIENT_TIMEOUT) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    response = client.post("/v1/chat/completions", json=chat_body(stream=self.stream))
                    text = answer_text(response) if response.status_code == 200 else response.text
                    self.answers.append(Answer(started, time.monotonic(), response.status_code, text))
                    if response.status_code != 200:
                        self.failures.append(f"HTTP {response.status_code}: {response.text[:300]}")
                except Exception as exc:  # recorded, and the test fails on it
                    self.failures.append(f"{type(exc).__name__}: {exc}")
