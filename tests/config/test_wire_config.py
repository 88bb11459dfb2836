"""A provider's wire settings in route files: capacity, TLS, proxy and transport, as the loader builds
them, and the mistakes `validate-config` refuses (or warns about) at file:line:col, as `serve` does."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gateway.api.app import create_app
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.validate_command import EXIT_INVALID, EXIT_VALID, run_validate

ROUTE = "routes:\n  chat:\n    targets:\n      - provider: up\n"


def provider_yaml(extra: str) -> str:
    return "providers:\n  up:\n    type: openai\n    base_url: https://up.test/v1\n" + extra + ROUTE


def validate(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> tuple[int, str]:
    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    out = io.StringIO()
    return run_validate([str(path)], out=out, environ=environ or {}), out.getvalue()


def test_defaults_fit_streams_and_the_wire_settings_are_built(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not read at load time")
    (tmp_path / "routes.yaml").write_text(
        provider_yaml(
            "    pool: {max_concurrent_requests: 4, acquire_timeout: 2}\n"
            "    tls: {ca_bundle: ca.pem, server_name: internal.up}\n"
            "    proxy: http://${PROXY_USER}:${PROXY_PASSWORD}@proxy.corp:3128\n"
        )
    )
    loaded = load_config([tmp_path], environ={"PROXY_USER": "u", "PROXY_PASSWORD": "p"})
    assert loaded.config is not None, loaded.diagnostics
    up = loaded.config.providers["up"]
    assert (up.pool.max_connections, up.pool.max_keepalive_connections) == (2048, 256)
    assert (up.pool.max_concurrent_requests, up.pool.acquire_timeout) == (4, 2.0)
    assert up.tls.ca_bundle == str(tmp_path / "ca.pem")  # relative to the route file
    assert up.tls.server_name == "internal.up" and up.tls.verify
    assert up.proxy == "http://u:p@proxy.corp:3128"
    assert up.transport == "h1"


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        (
            "    headers:\n      Host: evil.test\n",
            "6:7",
            "header 'Host' of provider 'up' is set by the gateway",
        ),
        ("    headers:\n      Content-Length: '3'\n", "6:7", "'Content-Length' of provider 'up' is set"),
        ("    headers:\n      transfer-encoding: chunked\n", "6:7", "'transfer-encoding' of provider 'up'"),
        ("    headers:\n      Connection: close\n", "6:7", "'Connection' of provider 'up' is set"),
        ("    tls: {ca_bundle: missing.pem}\n", "5:22", "tls.ca_bundle of provider 'up' is not a file"),
        ("    tls:\n      client_key: key.pem\n", "6:7", "tls.client_key without a tls.client_cert"),
        ("    http2: true\n", "5:5", "http2 of provider 'up' needs transport: httpx"),
        ("    proxy: https://proxy.corp\n", "5:12", "A proxy is an http://host:port URL"),
        ("    proxy: http://${PROXY_URL_HOST}:3128\n", "5:12", "proxy of provider 'up' uses PROXY_URL_HOST"),
        ("    pool: {acquire_timeout: -1}\n", "5:29", "acquire_timeout must be >= 0"),
        ("    transport: aiohttp\n", "5:16", "transport"),
    ],
)
def test_wire_mistakes_are_refused_at_their_place_by_validate_and_serve(
    tmp_path: Path, extra: str, where: str, message: str
) -> None:
    (tmp_path / "key.pem").write_text("")
    text = provider_yaml(extra)
    status, output = validate(tmp_path, text)
    assert status == EXIT_INVALID, output
    line = next(line for line in output.splitlines() if f"routes.yaml:{where}: error:" in line)
    assert message in line, output
    with pytest.raises(ConfigError) as refused:
        create_app(tmp_path, reload=False)
    assert any(message in str(d) and f":{where}:" in str(d) for d in refused.value.diagnostics)


def test_verification_turned_off_is_a_warning_not_an_error(tmp_path: Path) -> None:
    status, output = validate(tmp_path, provider_yaml("    tls:\n      verify: false\n"))
    assert status == EXIT_VALID, output
    assert "routes.yaml:6:15: warning: provider 'up' does not verify its TLS certificate" in output
    assert "tls.ca_bundle" in output  # the hint says what to do instead
