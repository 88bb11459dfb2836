"""`gateway explain MODEL --api responses|embeddings|completions` through the CLI's `main`: a chat-only
target shown as translated (to chat), a target declaring `apis: {responses: ...}` as native, and a route
that does not serve the API asked for reported as no route (the gateway answers 404), exit status 1."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main

ROUTES = """\
providers:
  chatty:
    type: openai
    base_url: http://127.0.0.1:9/chat-only/v1
    api_key: ${SIM_API_KEY:-sim-key}
  native:
    type: openai
    base_url: http://127.0.0.1:9/native/v1
    api_key: ${SIM_API_KEY:-sim-key}
    apis: {chat: true, responses: true}
routes:
  chat-only:
    targets: [{provider: chatty}]
  mixed:
    targets: [{provider: native}, {provider: chatty}]
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    (tmp_path / "routes.yaml").write_text(textwrap.dedent(ROUTES), encoding="utf-8")
    return tmp_path


def explain(config_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = main(["explain", *args, "--config", str(config_dir)])
    return status, capsys.readouterr().out


def explain_json(config_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    status, out = explain(config_dir, capsys, *args, "--format", "json")
    return status, json.loads(out)


def test_a_chat_only_target_is_translated_to_chat(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text = explain(config_dir, capsys, "chat-only", "--api", "responses")
    assert status == 0
    lines = text.splitlines()
    assert lines[0].startswith("model 'chat-only' (responses API) -> route 'chat-only'")
    assert "       translated: to its chat API (http://127.0.0.1:9/chat-only/v1)" in lines
    assert "native:" not in text

    status, report = explain_json(config_dir, capsys, "chat-only", "--api", "responses")
    assert (status, report["api"], report["matched"]) == (0, "responses", True)
    [target] = report["targets"]
    assert (target["translation"], target["upstream_api"]) == ("translated", "chat")


def test_a_target_declaring_responses_is_native(config_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, text = explain(config_dir, capsys, "mixed", "--api", "responses")
    assert status == 0
    assert "       native: sent unchanged to its responses API" in text.splitlines()

    status, report = explain_json(config_dir, capsys, "mixed", "--api", "responses")
    assert status == 0
    assert [
        (t["provider"], t["translation"], t["upstream_api"], t["upstream_base_url"])
        for t in report["targets"]
    ] == [
        ("native", "native", "responses", "http://127.0.0.1:9/native/v1"),
        ("chatty", "translated", "chat", "http://127.0.0.1:9/chat-only/v1"),
    ]
    # Asked in chat, both targets speak it.
    _, chat = explain_json(config_dir, capsys, "mixed", "--api", "chat")
    assert [t["translation"] for t in chat["targets"]] == ["native", "native"]


@pytest.mark.parametrize("api", ["embeddings", "completions"])
@pytest.mark.parametrize("model", ["chat-only", "mixed"])
def test_an_api_the_route_does_not_serve_is_no_route(
    config_dir: Path, capsys: pytest.CaptureFixture[str], api: str, model: str
) -> None:
    status, text = explain(config_dir, capsys, model, "--api", api)
    assert status == 1
    assert text.splitlines()[0] == f"model {model!r}: no route"
    assert (
        f"route {model!r} matches, but serves only chat, messages, responses: the gateway answers 404" in text
    )

    status, report = explain_json(config_dir, capsys, model, "--api", api)
    assert (status, report["api"], report["matched"]) == (1, api, False)
    assert "targets" not in report
