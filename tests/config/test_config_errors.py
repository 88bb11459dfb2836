"""Every kind of broken route file is reported at the exact line:column with a hint.

Table-driven: the fixture files under tests/fixtures/config/ (one problem each) and small inline files.
Expected entries are `line:column: severity: message` prefixes plus a fragment of the hint.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.config import Diagnostic, load_config

FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"


def headline(diagnostic: Diagnostic) -> str:
    return f"{diagnostic.line}:{diagnostic.column}: {diagnostic.severity}: {diagnostic.message}"


FIXTURE_CASES = [
    pytest.param(
        "bad_yaml.yaml",
        [("6:14: error: invalid YAML: expected ',' or ']'", "close the list with ']'")],
        id="bad-yaml-points-at-the-unclosed-bracket",
    ),
    pytest.param(
        "duplicate_key.yaml",
        [('4:5: error: duplicate key "type" (first at line 3)', "a key may appear once")],
        id="duplicate-key-in-one-file",
    ),
    pytest.param(
        "unknown_key.yaml",
        [("4:5: error: unknown key 'retires' in providers.local", "did you mean 'retry'?")],
        id="schema-unknown-key",
    ),
    pytest.param(
        "wrong_type.yaml",
        [("5:16: error: providers.local.timeouts.connect must be a number or null, not a string", "Seconds")],
        id="schema-wrong-type",
    ),
    pytest.param(
        "unknown_type.yaml",
        [
            (
                "3:11: error: providers.local.type must be one of: openai, ollama, anthropic, mock "
                "(got 'olama'); did you mean 'ollama'?",
                "API family",
            )
        ],
        id="schema-enum-with-suggestion",
    ),
    pytest.param(
        "missing_base_url.yaml",
        [("2:3: error: providers.vllm is missing the required key 'base_url'", "Required for type openai")],
        id="schema-openai-needs-base-url",
    ),
    pytest.param(
        "literal_api_key.yaml",
        [
            (
                "5:14: error: providers.deepseek.api_key: An API key must be an environment variable",
                "${DEEPSEEK_API_KEY}",
            )
        ],
        id="literal-api-key",
    ),
    pytest.param(
        "unknown_provider.yaml",
        [("8:19: error: route 'chat' targets unknown provider 'mokc'", "did you mean 'mock'?")],
        id="unknown-provider",
    ),
    pytest.param(
        "shadowed_name.yaml",
        [
            (
                "9:25: error: model name 'mock' is already served by route 'mock' at "
                f"{FIXTURES / 'broken' / 'shadowed_name.yaml'}:5:3",
                "belongs to one route",
            )
        ],
        id="alias-shadows-a-model-name",
    ),
    pytest.param(
        "shadowed_pattern.yaml",
        [
            (
                "10:12: error: pattern 'yi-*' of route 'yi-again' can never match: route 'yi' at "
                f"{FIXTURES / 'broken' / 'shadowed_pattern.yaml'}:6:12 has the same pattern",
                "remove one",
            )
        ],
        id="identical-glob-pattern",
    ),
    pytest.param(
        "zero_weights.yaml",
        [
            (
                "7:5: error: route 'split' uses strategy weighted but every target has weight 0",
                "weight above 0",
            )
        ],
        id="all-weights-zero",
    ),
]


@pytest.mark.parametrize(("name", "expected"), FIXTURE_CASES)
def test_broken_fixture_is_reported_at_its_position(name: str, expected: list[tuple[str, str]]) -> None:
    path = FIXTURES / "broken" / name
    result = load_config([path], environ={})
    assert result.config is None and not result.ok
    assert len(result.diagnostics) == len(expected), [str(d) for d in result.diagnostics]
    for diagnostic, (line, hint) in zip(result.diagnostics, expected, strict=True):
        assert diagnostic.path == str(path)
        assert headline(diagnostic).startswith(line), headline(diagnostic)
        assert hint in diagnostic.hint


def test_duplicate_route_across_files_names_both_places() -> None:
    directory = FIXTURES / "duplicate_route"
    result = load_config([directory], environ={})
    assert not result.ok
    [diagnostic] = result.diagnostics
    assert diagnostic.location == f"{directory / 'b.yaml'}:6:3"
    assert diagnostic.message == f"route 'chat' is defined twice: here and at {directory / 'a.yaml'}:5:3"
    assert "unique across all route files" in diagnostic.hint


def test_broken_directory_reports_every_file_in_load_order() -> None:
    result = load_config([FIXTURES / "broken"], environ={})
    files = [Path(d.path).name for d in result.diagnostics]
    # Parse and schema errors stop the load before the cross-file checks, so only those files appear.
    assert files == [
        "bad_yaml.yaml",
        "duplicate_key.yaml",
        "literal_api_key.yaml",
        "missing_base_url.yaml",
        "unknown_key.yaml",
        "unknown_type.yaml",
        "wrong_type.yaml",
    ]


INLINE_CASES = [
    pytest.param(
        """\
        providers:
          p:
            type: openai
            base_url: https://x.example
            headers:
              Authorization: Bearer sk-live-123
        """,
        [("6:22: error: header 'Authorization' of provider 'p' holds a literal secret", "${MY_API_KEY}")],
        id="literal-secret-header",
    ),
    pytest.param(
        """\
        providers:
          p:
            type: openai
            base_url: https://x.example
            api_key: ${1KEY}
        """,
        [("5:14: error: providers.p.api_key: invalid variable reference ${1KEY}", "a variable name is")],
        id="api-key-reference-with-bad-name",
    ),
    pytest.param(
        """\
        providers:
          p:
            type: openai
            base_url: https://x.example
            headers: {X-Org: "${ORG"}
        """,
        [("5:22: error: unclosed ${ in a variable reference", "${NAME:-default}")],
        id="unclosed-reference",
    ),
    pytest.param(
        """\
        providers:
          p:
            type: openai
            base_url: ${UPSTREAM_URL}
        """,
        [("4:15: error: base_url of provider 'p' uses UPSTREAM_URL, which is not set", "${UPSTREAM_URL:-")],
        id="base-url-variable-unset",
    ),
    pytest.param(
        """\
        providers:
          p:
            type: openai
            base_url: ${UPSTREAM_URL:-localhost:8000}
        """,
        [("4:15: error: base_url of provider 'p' is not an http(s) URL after interpolation", "http://")],
        id="base-url-not-a-url-after-interpolation",
    ),
    pytest.param(
        """\
        providers:
          m: {type: mock}
        routes:
          chat:
            aliases: ["chat-*"]
            targets: [{provider: m}]
        """,
        [("5:15: error: routes.chat.aliases[0]: An alias is an exact model name", "")],
        id="glob-alias",
    ),
    pytest.param(
        """\
        providers:
          m: {type: mock}
        routes:
          chat:
            targets:
              - provider: m
                weight: 2
        """,
        [("7:9: warning: weight is ignored: route 'chat' uses strategy ordered", "strategy: weighted")],
        id="weight-without-weighted-strategy-warns",
    ),
    pytest.param(
        """\
        providers:
          p:
            type: openai
            base_url: https://x.example
            mock: {tokens: 3}
        """,
        [("5:5: warning: mock options are ignored for provider 'p' of type openai", "type: mock")],
        id="mock-options-on-openai-warns",
    ),
    pytest.param(
        """\
        auth: none
        settings: {stats_store: memory}
        auth: keys
        """,
        [('3:1: error: duplicate key "auth" (first at line 1)', "")],
        id="duplicate-top-level-key",
    ),
    pytest.param(
        """\
        - providers: {}
        """,
        [("1:1: error: the route file must be a mapping, not a list", "providers:")],
        id="top-level-list",
    ),
    pytest.param(
        """\
        providers:
          m: {type: mock}
        routes:
          chat:
            targets: [{provider: m}]
            retry:
              retry_on: [429, "503", teapot, 200]
              attempts: 0
        """,
        [
            ("7:30: error: routes.chat.retry.retry_on[2]: A retry condition is an HTTP status 400-599", ""),
            ("7:38: error: routes.chat.retry.retry_on[3]: A retry condition is", ""),
            ("8:17: error: routes.chat.retry.attempts must be >= 1 (got 0)", "Attempts per target"),
        ],
        id="retry-conditions-and-attempts",
    ),
    pytest.param(
        """\
        providers:
          m: {type: mock}
        routes:
          chat:
            strategy: fastest
            targets: []
        polices: {}
        """,
        [
            (
                "5:15: error: routes.chat.strategy must be one of: ordered, weighted, round_robin, "
                "least_latency",
                "How targets are chosen",
            ),
            ("6:14: error: routes.chat.targets must not be empty", "Where requests go"),
            ("7:1: error: unknown key 'polices' in the route file", "did you mean 'prices'?"),
        ],
        id="several-schema-errors-in-order",
    ),
    pytest.param(
        """\
        providers:
          "bad name": {type: mock}
        """,
        [("2:3: error: invalid name 'bad name' in providers", "letters, digits")],
        id="bad-provider-name",
    ),
]


@pytest.mark.parametrize(("text", "expected"), INLINE_CASES)
def test_inline_file_is_reported_at_its_position(
    tmp_path: Path, text: str, expected: list[tuple[str, str]]
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    result = load_config([path], environ={})
    assert [headline(d)[: len(line)] for d, (line, _) in zip(result.diagnostics, expected, strict=False)] == [
        line for line, _ in expected
    ], [str(d) for d in result.diagnostics]
    assert len(result.diagnostics) == len(expected)
    for diagnostic, (_, hint) in zip(result.diagnostics, expected, strict=True):
        assert hint in diagnostic.hint
    assert result.ok == all(severity == "warning" for severity in (d.severity for d in result.diagnostics))


def test_secrets_are_never_repeated_in_messages(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        textwrap.dedent(
            """\
            providers:
              p:
                type: openai
                base_url: https://x.example
                api_key: sk-live-SECRET
                headers: {Authorization: Bearer sk-live-SECRET, X-Api-Key: 42}
            """
        ),
        encoding="utf-8",
    )
    result = load_config([tmp_path], environ={})
    assert len(result.errors) == 2  # the literal api_key; the non-string header value
    assert all("SECRET" not in str(d) and "42" not in d.message for d in result.diagnostics)


def test_duplicate_key_message_does_not_repeat_values(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("providers:\n  p:\n    api_key: ${A}\n    api_key: sk-SECRET\n", encoding="utf-8")
    [diagnostic] = load_config([path], environ={}).diagnostics
    assert diagnostic.message == 'duplicate key "api_key" (first at line 3)'


def test_conflicting_reserved_sections_across_files_name_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "auth: none\nsettings: {stats_store: memory}\nkeys: {ci: {secret: sha256:" + "a" * 64 + "}}\n",
        encoding="utf-8",
    )
    (tmp_path / "b.yaml").write_text(
        "auth: keys\nsettings:\n  stats_store: redis\nkeys:\n  ci: {secret: sha256:" + "b" * 64 + "}\n",
        encoding="utf-8",
    )
    result = load_config([tmp_path], environ={})
    assert [str(d).splitlines()[0] for d in result.diagnostics] == [
        f"{tmp_path / 'b.yaml'}:1:1: error: auth is set twice: here and at {tmp_path / 'a.yaml'}:1:1",
        f"{tmp_path / 'b.yaml'}:3:3: error: settings.stats_store is set twice: here and at "
        f"{tmp_path / 'a.yaml'}:2:12",
        f"{tmp_path / 'b.yaml'}:5:3: error: keys.ci is set twice: here and at {tmp_path / 'a.yaml'}:3:8",
    ]


def test_unset_variable_in_a_reserved_section_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys:\n  team-a:\n    secret: ${TEAM_A_KEY}\n", encoding="utf-8")
    result = load_config([path], environ={})
    assert [headline(d) for d in result.diagnostics] == [
        "3:13: error: environment variable TEAM_A_KEY is not set"
    ]
    assert load_config([path], environ={"TEAM_A_KEY": "k"}).ok


def test_non_utf8_file_is_reported_without_position(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("auth: n\xf6ne\n".encode("latin-1"))
    [diagnostic] = load_config([path], environ={}).diagnostics
    assert diagnostic.line is None and diagnostic.message.startswith("not UTF-8 text")
    assert str(diagnostic).startswith(f"{path}: error: not UTF-8 text")
