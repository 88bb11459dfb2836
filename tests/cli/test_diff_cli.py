"""`gateway diff` as a user runs it: the real CLI in a subprocess, on directories and on two revisions of a
temporary git repository made here (read with `git archive`: the work tree stays untouched, the
temporary copies are removed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent.parent / "fixtures" / "diff"
NO_SECRETS = {name: value for name, value in os.environ.items() if not name.endswith(("_KEY", "_API_KEY"))}


def gateway(*args: str, cwd: Path, tmpdir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(NO_SECRETS)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.run(
        [sys.executable, "-m", "gateway", "diff", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_exit_status_is_0_1_2_like_git_diff_exit_code() -> None:
    assert gateway("reformat/old", "reformat/new", cwd=FIXTURES).returncode == 0
    changed = gateway("price/old", "price/new", cwd=FIXTURES)
    assert changed.returncode == 1
    assert (
        "  ~ price primary/gpt-4o: input: 2.5 -> 3  (old price/old/routes.yaml:25 -> new "
        "price/new/routes.yaml:25)" in (changed.stdout.splitlines())
    )
    broken = gateway("broken/old", "broken/new", cwd=FIXTURES)
    assert broken.returncode == 2
    assert "broken/new/routes.yaml:10:15: error: routes.split.strategy" in broken.stdout
    usage = gateway("only-one-argument", cwd=FIXTURES)
    assert usage.returncode == 2
    assert "the following arguments are required: new" in usage.stderr


def test_markdown_and_json_from_the_command_line() -> None:
    markdown = gateway("retry/old", "retry/new", "--format", "markdown", cwd=FIXTURES)
    assert markdown.returncode == 1
    assert markdown.stdout.startswith("### Gateway routing changed\n")
    assert (
        "| ~ | route `chat` | retry.attempts: 2 -> 3 | old retry/old/providers.yaml:6 -> new "
        "retry/new/routes.yaml:5 |" in (markdown.stdout)
    )
    document = json.loads(gateway("retry/old", "retry/new", "--format", "json", cwd=FIXTURES).stdout)
    assert [change["field"] for change in document["changes"]] == [
        "retry.attempts",
        "retry.deadline",
        "retry from",
    ]


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A git repository whose routes/ is the base config at commit 1 and the `retry` change at commit 2;
    the work tree then holds an uncommitted edit (which a diff of revisions must ignore)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "config-repo"
    (repo / "routes").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for name in ("providers.yaml", "routes.yaml"):
        shutil.copy(FIXTURES / "retry" / "old" / name, repo / "routes" / name)
    (repo / "README.md").write_text("config repository\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    shutil.copy(FIXTURES / "retry" / "new" / "routes.yaml", repo / "routes" / "routes.yaml")
    _git(repo, "commit", "-q", "-am", "retry the chat route 3 times")
    (repo / "routes" / "routes.yaml").write_text("not: [valid yaml\n")  # uncommitted, in the work tree
    return repo


def test_two_git_revisions_with_config(repository: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    status_before = _git(repository, "status", "--porcelain")
    done = gateway("HEAD~1", "HEAD", "--config", "routes/", cwd=repository, tmpdir=scratch)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("old: HEAD~1:routes (version ")
    assert lines[1].startswith("new: HEAD:routes (version ")
    assert lines[2:] == [
        "routes:",
        "  ~ route chat: retry.attempts: 2 -> 3  (old routes/providers.yaml:6 -> new routes/routes.yaml:5)",
        "  ~ route chat: retry.deadline: none -> 30  (old routes/providers.yaml:6 -> new "
        "routes/routes.yaml:5)",
        "  ~ route chat: retry from: provider primary (the route's first target) -> route  "
        "(old routes/routes.yaml:2 -> new routes/routes.yaml:5)",
        "routing changed: 3 changes (routes 3)",
    ]
    assert _git(repository, "status", "--porcelain") == status_before  # the work tree is untouched
    assert list(scratch.iterdir()) == []  # the extracted revisions are removed


def test_git_flag_with_a_path_and_from_a_subdirectory(repository: Path) -> None:
    same = gateway("--git", "HEAD", "main", "routes", cwd=repository)
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.splitlines()[-1] == "no change: the same files"
    # From inside routes/, the path is relative to there, as with git itself.
    inside = gateway("--git", "HEAD~1", "HEAD", ".", "--format", "json", cwd=repository / "routes")
    assert inside.returncode == 1
    assert json.loads(inside.stdout)["changes"][0]["new_at"] == "routes/routes.yaml:5"


def test_git_errors_are_exit_2(repository: Path) -> None:
    unknown = gateway("no-such-branch", "HEAD", "--config", "routes", cwd=repository)
    assert (unknown.returncode, unknown.stdout) == (2, "unknown revision 'no-such-branch'\n")
    missing = gateway("HEAD~1", "HEAD", "--config", "elsewhere", cwd=repository)
    assert (missing.returncode, missing.stdout) == (2, "HEAD~1 has no elsewhere\n")
    # A revision whose config does not load: its errors, at the paths of the repository.
    _git(repository, "checkout", "-q", "--", "routes/routes.yaml")
    _git(repository, "rm", "-q", "routes/providers.yaml")
    _git(repository, "commit", "-q", "-m", "drop the providers")
    broken = gateway("HEAD~1", "HEAD", "--config", "routes", cwd=repository)
    assert broken.returncode == 2
    assert broken.stdout.startswith("new side (HEAD:routes) does not load:\nroutes/routes.yaml:")
