"""`settings.cors` and `settings.limits`: defaults, what is built, and what `validate-config` refuses
(with file:line:col), as `gateway serve` does: both load through `load_config`."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.config.models import DEFAULT_CORS_HEADERS, CorsSettings, EdgeSettings, InputLimits
from gateway.validate_command import run_validate

ROUTES = """\
providers:
  m: {type: mock}
routes:
  chat:
    targets: [{provider: m}]
"""


def write(tmp_path: Path, settings: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES + textwrap.dedent(settings), encoding="utf-8")
    return path


def test_defaults_without_settings(tmp_path: Path) -> None:
    config = load_config([write(tmp_path, "")]).config
    assert config is not None
    assert config.edge == EdgeSettings(None, InputLimits())
    assert InputLimits() == InputLimits(10 * 1024 * 1024, 32 * 1024, 100, 10_000, 512)


def test_cors_and_limits_are_built(tmp_path: Path) -> None:
    settings = """\
    settings:
      cors:
        allow_origins: [https://a.example]
        allow_methods: [post]
        allow_credentials: true
      limits: {max_body_bytes: 1000, max_tools: 3}
    """
    config = load_config([write(tmp_path, settings)]).config
    assert config is not None
    assert config.edge.cors == CorsSettings(
        allow_origins=("https://a.example",), allow_methods=("POST",), allow_credentials=True
    )
    assert config.edge.cors.allow_headers == DEFAULT_CORS_HEADERS
    assert config.edge.limits == InputLimits(max_body_bytes=1000, max_tools=3)


def test_any_origin_with_credentials_is_refused_where_written(tmp_path: Path) -> None:
    settings = """\
    settings:
      cors:
        allow_origins: [https://a.example, "*"]
        allow_credentials: true
    """
    path = write(tmp_path, settings)
    out = io.StringIO()
    assert run_validate([str(path)], "text", out=out, environ={}) == 1
    first = out.getvalue().splitlines()[0]
    assert first.startswith(f"{path}:8:40: error: settings.cors: allow_origins `*` together with")
    assert load_config([path], {}).config is None


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        ("settings:\n  cors: {allow_methods: [GET]}\n", "allow_origins"),
        ("settings:\n  cors: {allow_origins: []}\n", "allow_origins"),
        ("settings:\n  limits: {max_header_bytes: 4194304}\n", "max_header_bytes"),
        ("settings:\n  limits: {max_body: 10}\n", "max_body"),
    ],
    ids=["origins-required", "origins-not-empty", "header-bytes-above-the-fence", "unknown-key"],
)
def test_schema_refuses(tmp_path: Path, settings: str, fragment: str) -> None:
    result = load_config([write(tmp_path, settings)], {})
    assert result.config is None
    assert any(fragment in diagnostic.message for diagnostic in result.errors), result.diagnostics
