"""Three mistakes the YAML parser and the schema used to explain poorly, loaded from real files: each is
now reported where it was made, in the user's terms."""

from __future__ import annotations

from pathlib import Path

from gateway.config import Diagnostic, load_config


def only_error(tmp_path: Path, text: str) -> Diagnostic:
    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    result = load_config([path], environ={})
    assert not result.ok
    [error] = result.errors
    assert error.path == str(path)
    return error


def test_a_dedented_key_is_reported_on_its_own_line(tmp_path: Path) -> None:
    text = (
        "providers:\n"
        "  mock:\n"
        "    type: mock\n"
        "  local:\n"
        "   type: ollama\n"  # one space short: the line below then reads as part of `ollama`
        "    base_url: http://127.0.0.1:11434\n"
        "routes:\n"
        "  chat:\n"
        "    targets:\n"
        "      - provider: mock\n"
    )
    error = only_error(tmp_path, text)
    assert (error.line, error.column) == (5, 4)
    assert error.message == (
        "invalid YAML: 'type' is indented less than the line below it, which then reads as part of its value"
    )
    assert "indent 'type' like its siblings" in error.hint


def test_an_over_indented_key_is_reported_on_its_own_line(tmp_path: Path) -> None:
    text = "providers:\n  mock:\n    type: mock\n     base_url: http://x\n"
    error = only_error(tmp_path, text)
    assert (error.line, error.column) == (4, 6)
    assert error.message.startswith("invalid YAML: 'base_url' is indented more than the key above it")


def test_a_value_with_colon_space_still_gets_the_quoting_hint(tmp_path: Path) -> None:
    text = "providers:\n  mock:\n    type: mock\n    mock:\n      text: hello: world\n"
    error = only_error(tmp_path, text)
    assert (error.line, error.column) == (5, 18)
    assert error.message == "invalid YAML: mapping values are not allowed here"
    assert error.hint.startswith("quote a value that contains ': '")


def test_a_dash_alone_on_its_line_is_explained_without_parser_tokens(tmp_path: Path) -> None:
    text = (
        "providers:\n  mock:\n    type: mock\nroutes:\n  chat:\n    targets:\n      -\n      provider: mock\n"
    )
    error = only_error(tmp_path, text)
    assert (error.line, error.column) == (7, 7)  # the dash, not the key below it
    assert "'?'" not in error.message and "'?'" not in error.hint
    assert error.message == (
        "invalid YAML: this '-' has nothing after it, and the line below is not indented under it"
    )
    assert "- provider: mock" in error.hint


def test_an_unclosed_reference_is_not_blamed_as_a_literal_secret(tmp_path: Path) -> None:
    text = (
        "providers:\n"
        "  deepseek:\n"
        "    type: openai\n"
        "    base_url: https://api.deepseek.com\n"
        "    api_key: ${DEEPSEEK_API_KEY\n"
        "keys:\n"
        "  team:\n"
        "    secret: ${TEAM_KEY\n"
        "routes:\n"
        "  chat:\n"
        "    targets:\n"
        "      - provider: deepseek\n"
    )
    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    api_key, secret = load_config([path], environ={}).errors
    assert (api_key.line, api_key.column, secret.line, secret.column) == (5, 14, 8, 13)
    for error, where in ((api_key, "providers.deepseek.api_key"), (secret, "keys.team.secret")):
        assert error.message == f"{where}: unclosed ${{ in a variable reference: the closing }} is missing"
        assert "literal" not in error.message and "${NAME}" in error.hint
