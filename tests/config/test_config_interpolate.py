"""`${VAR}` / `${VAR:-default}` resolution, table-driven."""

from __future__ import annotations

import pytest

from gateway.config.interpolate import Interpolated, InterpolationError, interpolate

ENVIRON = {"KEY": "sk-1", "EMPTY": "", "HOST": "api.example"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", Interpolated("plain text")),
        ("${KEY}", Interpolated("sk-1")),
        ("Bearer ${KEY}", Interpolated("Bearer sk-1")),
        ("https://${HOST}/v1", Interpolated("https://api.example/v1")),
        ("${MISSING:-fallback}", Interpolated("fallback")),
        ("${EMPTY:-fallback}", Interpolated("fallback")),  # :- also covers set-but-empty, as in shells
        ("${KEY:-fallback}", Interpolated("sk-1")),
        ("${MISSING:-}", Interpolated("")),  # an explicit empty default is not "missing"
        ("${MISSING:-http://localhost:11434}", Interpolated("http://localhost:11434")),
        ("${MISSING}", Interpolated("", unset=("MISSING",))),
        ("${EMPTY}", Interpolated("", empty=("EMPTY",))),
        ("${A}-${B}", Interpolated("-", unset=("A", "B"))),
        ("cost: $$5 ${KEY}", Interpolated("cost: $5 sk-1")),
        ("$$${KEY}", Interpolated("$sk-1")),
        ("$${KEY}", Interpolated("${KEY}")),  # escaped: not a reference
        ("a lone $ sign", Interpolated("a lone $ sign")),
    ],
)
def test_interpolate(text: str, expected: Interpolated) -> None:
    assert interpolate(text, ENVIRON) == expected


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (Interpolated("x"), None),
        (Interpolated("", unset=("DEEPSEEK_API_KEY",)), "environment variable DEEPSEEK_API_KEY is not set"),
        (Interpolated("", empty=("YI",)), "environment variable YI is empty"),
    ],
)
def test_missing_reason(result: Interpolated, reason: str | None) -> None:
    assert result.missing_reason == reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${}", "invalid variable reference ${}"),
        ("${1KEY}", "invalid variable reference ${1KEY}"),
        ("${KEY-default}", "invalid variable reference ${KEY-default}"),
        ("${KEY", "unclosed ${"),
        ("${A:-${B}}", "nested reference in the default of ${A}"),
    ],
)
def test_malformed_references_raise(text: str, message: str) -> None:
    with pytest.raises(InterpolationError, match=message.replace("$", r"\$").replace("{", r"\{")) as caught:
        interpolate(text, ENVIRON)
    assert caught.value.hint


def test_environ_is_only_read_through_the_mapping_given() -> None:
    assert interpolate("${KEY}", {}) == Interpolated("", unset=("KEY",))
    assert interpolate("${KEY}", {"KEY": "other"}).value == "other"
