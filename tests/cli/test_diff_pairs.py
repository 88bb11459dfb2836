"""`gateway diff OLD NEW` over fixture pairs, one per kind of change (tests/fixtures/diff/<kind>/old|new:
the same two-file base, each `new` changing one thing). Text and JSON are checked exactly; paths are shown
relative to the working directory, here the fixtures directory.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_config
from gateway.diff_command import run_diff

FIXTURES = Path(__file__).parent.parent / "fixtures" / "diff"
BASE_VERSION = "b0a461d350dc"  # every pair's old side is the same base


def diff(kind: str, fmt: str = "text", environ: dict[str, str] | None = None) -> tuple[int, str]:
    out = io.StringIO()
    status = run_diff(f"{kind}/old", f"{kind}/new", fmt=fmt, out=out, environ=environ or {}, cwd=FIXTURES)
    return status, out.getvalue()


# kind -> (new version, the lines after the two header lines)
EXPECTED_TEXT: dict[str, tuple[str, list[str]]] = {
    "model-added": ("19d22e98f976", [
        "models:",
        "  + model gpt-4o-mini: route mini (exact): primary/gpt-4o-mini  (new "
        "model-added/new/routes.yaml:14)",
        "routes:",
        "  + route mini: model gpt-4o-mini: primary  (new model-added/new/routes.yaml:14)",
        "routing changed: 2 changes (models 1, routes 1)",
    ]),
    "model-removed": ("45d93478d032", [
        "models:",
        "  - model gpt-4: route chat (alias): primary/gpt-4, backup/gpt-4  (old "
        "model-removed/old/routes.yaml:2)",
        "routes:",
        "  ~ route chat: aliases: [gpt-4] -> []  "
        "(old model-removed/old/routes.yaml:4 -> new model-removed/new/routes.yaml:2)",
        "routing changed: 2 changes (models 1, routes 1)",
    ]),
    "model-moved": ("df381440d63f", [
        "models:",
        "  ~ model gpt-4: chain: [primary/gpt-4, backup/gpt-4] -> [backup/gpt-4, primary/gpt-4]  "
        "(old model-moved/old/routes.yaml:2 -> new model-moved/new/routes.yaml:2)",
        "  ~ model gpt-4o: chain: [primary/gpt-4o, backup/gpt-4o] -> [backup/gpt-4o, primary/gpt-4o]  "
        "(old model-moved/old/routes.yaml:2 -> new model-moved/new/routes.yaml:2)",
        "routes:",
        "  ~ route chat: targets[primary].priority: 0 -> 2  "
        "(old model-moved/old/routes.yaml:6 -> new model-moved/new/routes.yaml:7)",
        "routing changed: 3 changes (models 2, routes 1)",
    ]),
    "retry": ("138df35e11f8", [
        "routes:",
        "  ~ route chat: retry.attempts: 2 -> 3  (old retry/old/providers.yaml:6 -> new "
        "retry/new/routes.yaml:5)",
        "  ~ route chat: retry.deadline: none -> 30  (old retry/old/providers.yaml:6 -> new "
        "retry/new/routes.yaml:5)",
        "  ~ route chat: retry from: provider primary (the route's first target) -> route  "
        "(old retry/old/routes.yaml:2 -> new retry/new/routes.yaml:5)",
        "routing changed: 3 changes (routes 3)",
    ]),
    "timeouts": ("4ef62b95dc09", [
        "routes:",
        "  ~ route chat: timeouts: each target's provider's -> connect 60, read 60, write 60, first_byte 10, "
        "total none  (old timeouts/old/routes.yaml:2 -> new timeouts/new/routes.yaml:5)",
        "providers:",
        "  ~ provider backup: timeouts.read: 60 -> 120  "
        "(old timeouts/old/providers.yaml:7 -> new timeouts/new/providers.yaml:11)",
        "      serves routes: chat, split",
        "routing changed: 2 changes (routes 1, providers 1)",
    ]),
    "breaker": ("3a93ad4bbcf4", [
        "providers:",
        "  ~ provider primary: circuit_breaker.failure_threshold: 5 -> 3  "
        "(old breaker/old/providers.yaml:2 -> new breaker/new/providers.yaml:7)",
        "      serves routes: chat, split",
        "routing changed: 1 change (providers 1)",
    ]),
    "strategy-weights": ("6be7f9806f44", [
        "routes:",
        "  ~ route chat: strategy: ordered -> round_robin  "
        "(old strategy-weights/old/routes.yaml:2 -> new strategy-weights/new/routes.yaml:5)",
        "  ~ route split: targets[primary].weight: 3 -> 5  "
        "(old strategy-weights/old/routes.yaml:12 -> new strategy-weights/new/routes.yaml:13)",
        "routing changed: 2 changes (routes 2)",
    ]),
    "key-added": ("eb426d82bd08", [
        "keys:",
        "  + key ops: admin, models: every model  (new key-added/new/routes.yaml:23)",
        "routing changed: 1 change (keys 1)",
    ]),
    "key-removed": ("22a1a8e5de64", [
        "keys:",
        "  - key search: user, models: gpt-4o, claude-*  (old key-removed/old/routes.yaml:19)",
        "settings:",
        "  ~ settings: auth: keys -> open  (old key-removed/old/routes.yaml:18)",
        "routing changed: 2 changes (keys 1, settings 1)",
    ]),
    "allowlist": ("336af30df9ed", [
        "keys:",
        "  ~ key search: models: [gpt-4o, claude-*] -> [gpt-4o, claude-*, split]  "
        "(old allowlist/old/routes.yaml:21 -> new allowlist/new/routes.yaml:21)",
        "routing changed: 1 change (keys 1)",
    ]),
    "limit": ("0bb008b977bf", [
        "keys:",
        "  ~ key search: limits.requests_per_minute: 60 -> 120  "
        "(old limit/old/routes.yaml:22 -> new limit/new/routes.yaml:22)",
        "  ~ key search: limits.tokens_per_day: none -> 500000  "
        "(old limit/old/routes.yaml:22 -> new limit/new/routes.yaml:22)",
        "  ~ key search: limits.shadow: [] -> [tokens_per_day]  "
        "(old limit/old/routes.yaml:22 -> new limit/new/routes.yaml:22)",
        "routing changed: 3 changes (keys 3)",
    ]),
    "provider-url": ("a478a649ba73", [
        "providers:",
        "  ~ provider backup: base_url: https://backup.example/v1 -> https://backup.internal.example/v1  "
        "(old provider-url/old/providers.yaml:9 -> new provider-url/new/providers.yaml:9)",
        "      serves routes: chat, split",
        "  ~ provider backup: apis.chat: https://backup.example/v1 -> https://backup.internal.example/v1  "
        "(old provider-url/old/providers.yaml:7 -> new provider-url/new/providers.yaml:7)",
        "routing changed: 2 changes (providers 2)",
    ]),
    "declared-api": ("da13575d25f8", [
        "models:",
        "  ~ model gpt-4: api.responses: [backup via chat, primary via chat] -> [backup via chat, "
        "primary native]  "
        "(old declared-api/old/routes.yaml:2 -> new declared-api/new/routes.yaml:2)",
        "  ~ model gpt-4o: api.responses: [backup via chat, primary via chat] -> [backup via chat, "
        "primary native]  "
        "(old declared-api/old/routes.yaml:2 -> new declared-api/new/routes.yaml:2)",
        "  ~ model split: api.responses: [backup via chat, primary via chat] -> [backup via chat, "
        "primary native]  "
        "(old declared-api/old/routes.yaml:9 -> new declared-api/new/routes.yaml:9)",
        "providers:",
        "  + provider primary: apis.responses: (absent) -> https://primary.example/v1  "
        "(old declared-api/old/providers.yaml:2 -> new declared-api/new/providers.yaml:7)",
        "      serves routes: chat, split",
        "routing changed: 4 changes (models 3, providers 1)",
    ]),
    "price": ("8fac02250140", [
        "prices:",
        "  ~ price primary/gpt-4o: input: 2.5 -> 3  (old price/old/routes.yaml:25 -> new "
        "price/new/routes.yaml:25)",
        "routing changed: 1 change (prices 1)",
    ]),
    "secret": ("09939bae27c4", [
        "providers:",
        "  ~ provider primary: api_key: secret changed  "
        "(old secret/old/providers.yaml:5 -> new secret/new/providers.yaml:5)",
        "      serves routes: chat, split",
        "keys:",
        "  ~ key search: secret: secret changed  (old secret/old/routes.yaml:20 -> new "
        "secret/new/routes.yaml:20)",
        "routing changed: 2 changes (providers 1, keys 1)",
    ]),
    "reformat": ("5c0b90bf1ebc", [
        "moved, no effect:",
        "  route claude  (old reformat/old/routes.yaml:14 -> new reformat/new/claude.yaml:3)",
        "no routing change: the files differ only in text (comments, order, layout, files)",
    ]),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(EXPECTED_TEXT))
def test_text_of_each_kind_of_change(kind: str) -> None:
    version, body = EXPECTED_TEXT[kind]
    status, text = diff(kind)
    header = [f"old: {kind}/old (version {BASE_VERSION})", f"new: {kind}/new (version {version})"]
    assert text.splitlines() == header + body
    assert status == (0 if kind == "reformat" else 1)


# kind -> every change as (group, name, kind, field, old, new, old_at, new_at); None for `field` is a
# whole entity added or removed, its old/new the one-line summary.
EXPECTED_CHANGES: dict[str, list[tuple[Any, ...]]] = {
    "model-added": [
        ("models", "gpt-4o-mini", "added", None, None, "route mini (exact): primary/gpt-4o-mini",
         None, "model-added/new/routes.yaml:14"),
        ("routes", "mini", "added", None, None, "model gpt-4o-mini: primary",
         None, "model-added/new/routes.yaml:14"),
    ],
    "model-moved": [
        ("models", "gpt-4", "changed", "chain", ["primary/gpt-4", "backup/gpt-4"],
         ["backup/gpt-4", "primary/gpt-4"], "model-moved/old/routes.yaml:2", "model-moved/new/routes.yaml:2"),
        ("models", "gpt-4o", "changed", "chain", ["primary/gpt-4o", "backup/gpt-4o"],
         ["backup/gpt-4o", "primary/gpt-4o"],
         "model-moved/old/routes.yaml:2", "model-moved/new/routes.yaml:2"),
        ("routes", "chat", "changed", "targets[primary].priority", 0, 2,
         "model-moved/old/routes.yaml:6", "model-moved/new/routes.yaml:7"),
    ],
    "retry": [
        ("routes", "chat", "changed", "retry.attempts", 2, 3,
         "retry/old/providers.yaml:6", "retry/new/routes.yaml:5"),
        ("routes", "chat", "changed", "retry.deadline", None, 30.0,
         "retry/old/providers.yaml:6", "retry/new/routes.yaml:5"),
        ("routes", "chat", "changed", "retry from", "provider primary (the route's first target)", "route",
         "retry/old/routes.yaml:2", "retry/new/routes.yaml:5"),
    ],
    "strategy-weights": [
        ("routes", "chat", "changed", "strategy", "ordered", "round_robin",
         "strategy-weights/old/routes.yaml:2", "strategy-weights/new/routes.yaml:5"),
        ("routes", "split", "changed", "targets[primary].weight", 3.0, 5.0,
         "strategy-weights/old/routes.yaml:12", "strategy-weights/new/routes.yaml:13"),
    ],
    "key-removed": [
        ("keys", "search", "removed", None, "user, models: gpt-4o, claude-*", None,
         "key-removed/old/routes.yaml:19", None),
        ("settings", "settings", "changed", "auth", "keys", "open", "key-removed/old/routes.yaml:18", None),
    ],
    "declared-api": [
        *(("models", name, "changed", "api.responses", ["backup via chat", "primary via chat"],
           ["backup via chat", "primary native"], f"declared-api/old/routes.yaml:{line}",
           f"declared-api/new/routes.yaml:{line}")
          for name, line in (("gpt-4", 2), ("gpt-4o", 2), ("split", 9))),
        ("providers", "primary", "added", "apis.responses", None, "https://primary.example/v1",
         "declared-api/old/providers.yaml:2", "declared-api/new/providers.yaml:7"),
    ],
    "price": [
        ("prices", "primary/gpt-4o", "changed", "input", "2.5", "3", "price/old/routes.yaml:25",
         "price/new/routes.yaml:25"),
    ],
    "reformat": [],
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(EXPECTED_CHANGES))
def test_json_changes_of_each_kind(kind: str) -> None:
    status, text = diff(kind, "json")
    document = json.loads(text)
    found = [
        tuple(change[name] for name in ("group", "name", "kind", "field", "old", "new", "old_at", "new_at"))
        for change in document["changes"]
    ]
    assert found == EXPECTED_CHANGES[kind]
    assert document["exit_code"] == status == (1 if found else 0)
    assert document["changed"] is bool(found)


def test_json_document_is_exact_for_a_limit_change() -> None:
    status, text = diff("limit", "json")
    at = {"old_at": "limit/old/routes.yaml:22", "new_at": "limit/new/routes.yaml:22"}
    common = {"group": "keys", "name": "search", "kind": "changed", "secret": False, "note": None}
    assert json.loads(text) == {
        "schema": 1,
        "changed": True,
        "exit_code": 1,
        "summary": "routing changed: 3 changes (keys 3)",
        "old": {
            "label": "limit/old",
            "version": BASE_VERSION,
            "files": ["limit/old/providers.yaml", "limit/old/routes.yaml"],
        },
        "new": {
            "label": "limit/new",
            "version": "0bb008b977bf",
            "files": ["limit/new/providers.yaml", "limit/new/routes.yaml"],
        },
        "counts": {"keys": 3},
        "changes": [
            {**common, "field": "limits.requests_per_minute", "old": 60, "new": 120, **at},
            {**common, "field": "limits.tokens_per_day", "old": None, "new": 500000, **at},
            {**common, "field": "limits.shadow", "old": [], "new": ["tokens_per_day"], **at},
        ],
        "moved": [],
    }
    assert status == 1


def test_json_of_a_pure_reformat_reports_the_move_only() -> None:
    status, text = diff("reformat", "json")
    document = json.loads(text)
    assert (status, document["changed"], document["changes"]) == (0, False, [])
    assert (
        document["summary"]
        == "no routing change: the files differ only in text (comments, order, layout, files)"
    )
    assert document["moved"] == [
        {
            "group": "routes",
            "name": "claude",
            "old_at": "reformat/old/routes.yaml:14",
            "new_at": "reformat/new/claude.yaml:3",
        }
    ]
    assert document["new"]["files"] == [
        "reformat/new/claude.yaml",
        "reformat/new/providers.yaml",
        "reformat/new/routes.yaml",
    ]


def test_the_same_files_are_no_change() -> None:
    out = io.StringIO()
    status = run_diff("model-added/old", "price/old", out=out, environ={}, cwd=FIXTURES)
    assert status == 0
    assert out.getvalue().splitlines()[-1] == "no change: the same files"


def test_a_side_that_fails_to_load_is_exit_2_with_its_errors_at_file_line_col() -> None:
    status, text = diff("broken")
    assert status == 2
    lines = text.splitlines()
    assert lines[0] == "new side (broken/new) does not load:"
    assert lines[1] == (
        "broken/new/routes.yaml:10:15: error: routes.split.strategy must be one of: ordered, weighted, "
        "round_robin, least_latency (got 'fastest')"
    )
    assert lines[2].startswith("  hint: How targets are chosen")
    status, text = diff("broken", "json")
    document = json.loads(text)
    assert (status, document["exit_code"], document["changed"]) == (2, 2, None)
    assert [(d["side"], d["path"], d["line"], d["column"], d["code"]) for d in document["diagnostics"]] == [
        ("new", "broken/new/routes.yaml", 10, 15, "schema")
    ]


def test_markdown_summary_for_a_pull_request() -> None:
    status, text = diff("timeouts", "markdown")
    assert status == 1
    assert text == (
        "### Gateway routing changed\n"
        "\n"
        f"`timeouts/old` ({BASE_VERSION}) → `timeouts/new` (4ef62b95dc09)\n"
        "\n"
        "**2 changes** (routes 1, providers 1)\n"
        "\n"
        "| | what | change | where |\n"
        "|---|---|---|---|\n"
        "| ~ | route `chat` | timeouts: each target's provider's -> connect 60, read 60, write 60, "
        "first_byte 10, "
        "total none | old timeouts/old/routes.yaml:2 -> new timeouts/new/routes.yaml:5 |\n"
        "| ~ | provider `backup` | timeouts.read: 60 -> 120 | old timeouts/old/providers.yaml:7 -> "
        "new timeouts/new/providers.yaml:11 |\n"
    )
    status, text = diff("reformat", "markdown")
    assert status == 0
    assert text.splitlines()[0] == "### No gateway routing change"
    assert text.splitlines()[-1] == "Moved to another file, no effect: route `claude`"
    status, text = diff("broken", "markdown")
    assert status == 2
    assert text.startswith("### Gateway config diff failed\n\n```\nnew side (broken/new) does not load:\n")


def test_unset_variables_are_not_needed() -> None:
    """The base refers to ${SEARCH_KEY} (a gateway key) and provider keys: validate-config refuses it
    without them, the diff reads each as a placeholder and never needs a secret."""
    assert not load_config([FIXTURES / "limit" / "old"], {}).ok
    status, text = diff("limit", environ={})
    assert status == 1
    assert "envunset" not in text


def test_secrets_are_never_printed_in_any_format() -> None:
    environ = {
        "PRIMARY_API_KEY": "sk-old-provider-secret-1234",
        "OPENAI_API_KEY": "sk-new-provider-secret-5678",
        "SEARCH_KEY": "gw-old-gateway-key-abcd",
        "SEARCH_TEAM_KEY": "gw-new-gateway-key-efgh",
    }
    for fmt in ("text", "json", "markdown"):
        status, text = diff("secret", fmt, environ)
        assert status == 1
        assert "secret changed" in text or '"secret": true' in text
        for value in environ.values():
            assert value not in text
    # The same secret behind another variable name is no change of the secret.
    same = {
        "PRIMARY_API_KEY": "sk-same",
        "OPENAI_API_KEY": "sk-same",
        "SEARCH_KEY": "a",
        "SEARCH_TEAM_KEY": "a",
    }
    status, text = diff("secret", "json", same)
    assert (status, json.loads(text)["changes"]) == (0, [])


def test_usage_errors_are_exit_2() -> None:
    out = io.StringIO()
    assert run_diff("nowhere/old", "price/new", out=out, environ={}, cwd=FIXTURES) == 2
    assert out.getvalue() == (
        "no such file or directory: nowhere/old; to compare git revisions, add --git (or --config PATH)\n"
    )
    out = io.StringIO()
    assert run_diff("price/old", "price/new", fmt="yaml", out=out, environ={}, cwd=FIXTURES) == 2
    assert out.getvalue() == "unknown format 'yaml'; use one of: text, json, markdown\n"
