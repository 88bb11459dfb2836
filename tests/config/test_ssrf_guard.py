"""The SSRF guard at load time: a provider URL (base_url or an `apis:` URL) on a link-local or cloud
metadata address is refused by `gateway validate-config` (the real CLI, in a subprocess) and by startup,
with its file:line:col, unless the provider sets `allow_private_network: true`. Loopback and private
addresses stay allowed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.api.app import create_app
from gateway.config.address_guard import refused_host, refused_url
from gateway.errors import ConfigError
from tests.support.harness import REPO_ROOT


def routes(base_url: str, *, extra: str = "", apis: str = "") -> str:
    return (
        textwrap.dedent(
            f"""\
        providers:
          cloud:
            type: openai
            base_url: {base_url}
            api_key: ${{SIM_API_KEY:-sim-key}}
        """
        )
        + "".join(f"    {line}\n" for line in (extra, apis) if line)
        + textwrap.dedent(
            """\
        routes:
          m:
            targets: [{provider: cloud}]
        """
        )
    )


def validate_config(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "validate-config", str(path)],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


def test_validate_config_refuses_the_metadata_address_with_its_position(tmp_path: Path) -> None:
    status, output = validate_config(tmp_path, routes("http://169.254.169.254/latest"))
    assert status == 1, output
    assert (
        f"{tmp_path / 'routes.yaml'}:4:15: error: base_url of provider 'cloud' points at a link-local "
        in (output)
    )
    assert "169.254.169.254 is in 169.254.0.0/16" in output
    assert "allow_private_network: true" in output


def test_an_apis_url_on_a_metadata_name_is_refused_too(tmp_path: Path) -> None:
    text = routes(
        "http://10.0.0.7:8000/v1", apis="apis: {chat: true, messages: 'http://metadata.google.internal/'}"
    )
    status, output = validate_config(tmp_path, text)
    assert status == 1, output
    assert f"{tmp_path / 'routes.yaml'}:6:" in output
    assert "apis.messages of provider 'cloud' points at" in output
    assert "'metadata.google.internal' is a cloud metadata service name" in output


def test_a_reference_resolving_there_is_refused_when_set(tmp_path: Path) -> None:
    text = routes("${CLOUD_URL}")
    status, output = validate_config(tmp_path, text, {"CLOUD_URL": "http://[fd00:ec2::254]/v1"})
    assert status == 1, output
    assert ":4:15: error: base_url of provider 'cloud'" in output and "fd00:ec2::254" in output


def test_the_opt_in_lets_it_through(tmp_path: Path) -> None:
    status, output = validate_config(
        tmp_path, routes("http://169.254.169.254/v1", extra="allow_private_network: true")
    )
    assert status == 0, output


@pytest.mark.parametrize(
    "base_url",
    ["http://localhost:11434", "http://127.0.0.1:8000/v1", "http://10.1.2.3/v1", "http://[::1]:80"],
)
def test_loopback_and_private_networks_stay_allowed(tmp_path: Path, base_url: str) -> None:
    status, output = validate_config(tmp_path, routes(base_url))
    assert status == 0, output


def test_startup_refuses_it_as_validate_config_does(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(routes("http://100.100.100.200/v1"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routes\.yaml:4:15: error: base_url of provider 'cloud'"):
        create_app(tmp_path, reload=False)


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("169.254.169.254", True),
        ("169.254.170.2", True),  # ECS task credentials
        ("2852039166", True),  # 169.254.169.254 as one integer
        ("0xa9fea9fe", True),
        ("[fe80::1]", True),
        ("fe80::1%eth0", True),
        ("::ffff:169.254.169.254", True),
        ("fd00:ec2::254", True),
        ("100.100.100.200", True),
        ("METADATA.google.internal.", True),
        ("metadata", True),
        ("instance-data", True),
        ("100.100.100.201", False),
        ("fd00:ec2::253", False),
        ("127.0.0.1", False),
        ("192.168.1.10", False),
        ("api.openai.com", False),
        ("metadata.example.com", False),
        ("10", False),  # 0.0.0.10 to the C resolver: not in a refused range
    ],
)
def test_refused_hosts(host: str, refused: bool) -> None:
    assert (refused_host(host) is not None) is refused


def test_refused_url_reads_the_host_only() -> None:
    assert refused_url("http://user:pw@169.254.169.254:80/x?y=1") is not None
    assert refused_url("https://api.example.com/169.254.169.254") is None
    assert refused_url("http://[not-an-ip/") is None
