"""`gateway test`: route test files checked against a config, failures at file:line:col.

Fixtures: tests/fixtures/route_tests/config (route file and its tests/ dir, which passes),
failing/ (every kind of failed expectation) and invalid/ (schema errors in the test file).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

from gateway.decision import load_offline
from gateway.route_test_command import run_route_tests
from gateway.validate_command import run_validate
from tests.support.harness import REPO_ROOT

FIXTURES = Path(__file__).parent.parent / "fixtures" / "route_tests"
CONFIG = FIXTURES / "config"
FAILING = FIXTURES / "failing" / "routing.yaml"
INVALID = FIXTURES / "invalid" / "routing.yaml"


def route_tests(*files: Path, fmt: str = "text", config: Path = CONFIG) -> tuple[int, str]:
    out = io.StringIO()
    status = run_route_tests(str(config), [str(f) for f in files], fmt, out=out, environ={})
    return status, out.getvalue()


def test_the_config_passes_its_own_tests_without_any_secret() -> None:
    # Neither the providers' keys nor the gateway keys' ${VAR} secrets are set (environ={}).
    status, text = route_tests()
    version = load_offline([CONFIG], {}).config
    assert version is not None
    assert (status, text) == (
        0,
        f"route tests: 7 passed, 0 failed (7 tests in 1 file, config {version.version})\n",
    )


def test_every_failed_expectation_is_reported_at_its_place_with_what_it_got() -> None:
    status, text = route_tests(FAILING)
    at = str(FAILING)
    search = "(model 'deepseek-chat' over chat, key 'search-team')"
    priced = "('the claude models are priced': model 'claude-sonnet-4' over messages)"
    claude = "(model 'claude-sonnet-4' over chat, key 'search-team')"
    assert status == 1
    assert text.splitlines()[:-1] == [
        f"{at}:5:14: expected route 'deepseek', got route 'deepseek-chat' {search}",
        f"{at}:6:17: expected target 1 local/qwen2.5, got deepseek/deepseek-chat (native): targets "
        f"[deepseek/deepseek-chat (native), local/qwen2.5 (native)] {search}",
        f"{at}:7:16: expected denied (403 model_not_allowed), got allowed {search}",
        f"{at}:12:17: expected target 1 claude (translated), got claude/claude-sonnet-4 (native): targets "
        f"[claude/claude-sonnet-4 (native)] {priced}",
        f"{at}:13:14: expected claude/claude-sonnet-4 at input 3, output 12 USD per million tokens, "
        f"got input 3, output 15 USD {priced}",
        f"{at}:17:16: expected allowed, got denied (403 model_not_allowed) {claude}",
        f"{at}:18:15: expected requests_per_minute 100 (enforce), got 600 (enforce) {claude}",
        f"{at}:20:10: key 'nobody' is not defined in the config (keys: ops, search-team) "
        "(model 'deepseek-chat' over chat, key 'nobody')",
        f"{at}:24:23: expected allowed, got 401 missing_api_key (the test gives no key and the config "
        "enforces keys) (model 'embed' over chat)",
        f"{at}:24:38: expected targets [local/nomic-embed-text, deepseek], got [local/nomic-embed-text "
        "(native)] (model 'embed' over chat)",
        f"{at}:26:21: expected route 'deepseek-chat', got no route (404 model_not_found) "
        "(model 'gpt-4o' over chat)",
        f"{at}:26:43: expected a price, got no route (404 model_not_found) (model 'gpt-4o' over chat)",
    ]
    assert text.splitlines()[-1].startswith("route tests: 0 passed, 6 failed (6 tests in 1 file, config ")


def test_github_format_annotates_the_failed_lines() -> None:
    status, text = route_tests(FAILING, fmt="github")
    first = text.splitlines()[0]
    assert status == 1
    assert first == (
        f"::error file={FAILING},line=5,col=14,title=gateway config route-test::expected route 'deepseek', "
        "got route 'deepseek-chat' (model 'deepseek-chat' over chat, key 'search-team')"
    )
    assert sum(line.startswith("::error ") for line in text.splitlines()) == 12


def test_json_format_lists_failures_with_positions() -> None:
    status, text = route_tests(FAILING, fmt="json")
    report = json.loads(text)
    assert (status, report["exit_code"], report["passed"], report["errors"]) == (1, 1, 0, [])
    assert [(f["line"], f["column"]) for f in report["failures"]] == [
        (5, 14), (6, 17), (7, 16), (12, 17), (13, 14), (17, 16), (18, 15), (20, 10), (24, 23), (24, 38),
        (26, 21), (26, 43),
    ]  # fmt: skip


def test_schema_errors_in_a_test_file_are_at_file_line_col_and_exit_2() -> None:
    status, text = route_tests(INVALID)
    at = str(INVALID)
    assert status == 2
    assert text.splitlines() == [
        f"{at}:3:10: error: tests[0].api must be one of: chat, messages, responses, embeddings, completions "
        "(got 'chats')",
        f"{at}:6:7: error: unknown key 'target' in tests[0].expect",
        "  hint: allowed keys: allowed, limits, price, route, targets",
        f"{at}:7:5: error: tests[1] is missing the required key 'model'",
        f"{at}:8:23: error: tests[1].expect.allowed must be true or false",
        f"{at}:11:17: error: tests[2].expect.targets[0] must be a string or a mapping",
        f"{at}:12:37: error: tests[2].expect.limits.requests_per_minute must be >= 1 (got 0)",
        "cannot run the route tests: fix the errors above",
    ]


def test_yaml_errors_empty_files_and_a_broken_config_exit_2(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("tests:\n  - model: [x\n", encoding="utf-8")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n", encoding="utf-8")
    status, text = route_tests(bad_yaml, empty)
    assert status == 2
    lines = text.splitlines()
    assert lines[0] == (  # at the '[' left open
        f"{bad_yaml}:2:12: error: invalid YAML: expected ',' or ']', but got '<stream end>' "
        "(while parsing a flow sequence)"
    )
    assert f"{empty}:1:1: error: the route test file must be a mapping" in lines
    broken = tmp_path / "routes"
    broken.mkdir()
    (broken / "routes.yaml").write_text(
        "routes:\n  x:\n    targets: [{provider: nowhere}]\n", encoding="utf-8"
    )
    status, text = route_tests(FAILING, config=broken)
    assert status == 2
    assert "unknown provider 'nowhere'" in text.splitlines()[0]
    assert text.splitlines()[-1] == "cannot run the route tests: fix the errors above"


def test_without_files_the_config_needs_a_tests_directory(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(
        "providers: {m: {type: mock}}\nroutes: {m: {targets: [{provider: m}]}}\n"
    )
    status, text = route_tests(config=tmp_path)
    assert status == 2
    assert (
        text.splitlines()[0]
        == f"{tmp_path / 'tests'}: error: no route test files: this directory does not exist"
    )


def test_the_tests_directory_is_not_loaded_as_route_files() -> None:
    result = load_offline([CONFIG], {})
    assert result.sources == (str(CONFIG / "routes.yaml"),)
    out = io.StringIO()
    # validate-config sees only the route file (its key secrets are errors there: it checks for serve).
    run_validate([str(CONFIG)], "json", out=out, environ={"SEARCH_TEAM_KEY": "a", "OPS_KEY": "b"})
    assert json.loads(out.getvalue())["files"] == [str(CONFIG / "routes.yaml")]


def test_the_cli_runs_the_config_tests_directory() -> None:
    env = {key: value for key, value in os.environ.items() if not key.endswith("_KEY")}
    passing = subprocess.run(
        [sys.executable, "-m", "gateway", "test", "--config", str(CONFIG)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (passing.returncode, passing.stderr) == (0, "")
    assert passing.stdout.startswith("route tests: 7 passed, 0 failed (7 tests in 1 file")
    failing = subprocess.run(
        [sys.executable, "-m", "gateway", "test", "--config", str(CONFIG), str(FAILING), "--format=github"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert failing.returncode == 1
    assert failing.stdout.count("::error file=") == 12


def test_the_shipped_routes_pass_their_route_tests() -> None:
    """routes/tests/routing.yaml pins the routes the README starts with: `gateway test --config routes/`
    works on a fresh clone, with no provider key set."""
    status, text = route_tests(config=REPO_ROOT / "routes")
    assert status == 0, text
    assert text.startswith("route tests: 8 passed, 0 failed (8 tests in 1 file")
