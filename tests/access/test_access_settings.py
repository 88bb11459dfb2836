"""Access settings from the `keys:`, `auth:` and `settings:` sections and the API_KEY variable."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.access.keys import hash_secret
from gateway.access.settings import (
    AccessConfigError,
    build_access_settings,
    is_loopback,
    multi_process_warning,
    open_mode_refusal,
)

TEAM = {"team": {"secret": "sk-team"}}


@pytest.mark.parametrize(
    ("extras", "environ", "mode", "names"),
    [
        ({}, {}, "open", []),
        ({"keys": TEAM}, {}, "keys", ["team"]),
        ({"keys": TEAM, "auth": "keys"}, {}, "keys", ["team"]),
        ({}, {"API_KEY": "sk-simple"}, "keys", ["API_KEY"]),
        ({"keys": TEAM}, {"API_KEY": "sk-simple"}, "keys", ["team", "API_KEY"]),
        ({"auth": "keys"}, {"API_KEY": "sk-simple"}, "keys", ["API_KEY"]),
        ({"auth": "none"}, {}, "none", []),
        ({"auth": "none", "keys": TEAM}, {"API_KEY": "x"}, "none", []),  # explicit: keys are ignored
        ({}, {"API_KEY": ""}, "open", []),  # an empty variable is no key
    ],
)
def test_auth_mode(extras: dict[str, Any], environ: dict[str, str], mode: str, names: list[str]) -> None:
    settings = build_access_settings(extras, environ)
    assert settings.mode == mode
    assert [key.name for key in settings.keys.keys] == names
    assert settings.enforced is (mode == "keys")


def test_simple_mode_key_is_an_unlimited_admin_for_every_model() -> None:
    settings = build_access_settings({}, {"API_KEY": "sk-simple"})
    key = settings.keys.find("sk-simple")
    assert key is not None
    assert key.is_admin and not key.limits.any and key.models == ()


def test_a_full_key_definition() -> None:
    extras = {
        "keys": {
            "team-a": {
                "secret": hash_secret("sk-a"),
                "models": ["deepseek-*", "mock"],
                "limits": {"requests_per_minute": 50, "tokens_per_minute": 1000, "tokens_per_day": 9000},
                "role": "admin",
            }
        }
    }
    [key] = build_access_settings(extras, {}).keys.keys
    assert (key.name, key.models, key.role) == ("team-a", ("deepseek-*", "mock"), "admin")
    assert (key.limits.requests_per_minute, key.limits.tokens_per_minute, key.limits.tokens_per_day) == (
        50,
        1000,
        9000,
    )


@pytest.mark.parametrize(
    ("extras", "environ", "message"),
    [
        ({"auth": "keys"}, {}, "auth: keys but no key is configured"),
        ({"keys": {"a": {"secret": "s"}, "b": {"secret": "s"}}}, {}, "'a' and 'b' have the same secret"),
        ({"keys": {"API_KEY": {"secret": "x"}}}, {"API_KEY": "y"}, "reserved for the API_KEY variable"),
        ({"keys": {"a": {}}}, {}, "key 'a' has no secret"),
        ({"settings": {"stats_store": "redis"}}, {}, "redis://host:port/db"),
        ({"settings": {"stats_store": "postgres://x"}}, {}, "redis://host:port/db"),
        # Roles, limits, intervals and the auth value are the schema's to check, with file:line:col:
        # tests/config/test_validate_serve_agree.py loads them from real route files.
    ],
)
def test_unusable_settings_are_errors(extras: dict[str, Any], environ: dict[str, str], message: str) -> None:
    with pytest.raises(AccessConfigError, match=message.replace("(", r"\(")):
        build_access_settings(extras, environ)


def test_errors_never_repeat_a_secret() -> None:
    extras = {"keys": {"a": {"secret": "sk-very-secret"}, "b": {"secret": "sk-very-secret"}}}
    with pytest.raises(AccessConfigError) as caught:
        build_access_settings(extras, {})
    assert "sk-very-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "kind", "shown"),
    [
        ("memory", "sqlite", "sqlite::memory:"),
        ("/var/lib/gateway/usage.db", "sqlite", "sqlite:/var/lib/gateway/usage.db"),
        ("sqlite:///data/usage.db", "sqlite", "sqlite:data/usage.db"),
        ("usage.db", "sqlite", "sqlite:usage.db"),
        ("redis://127.0.0.1:6379/0", "redis", "redis://127.0.0.1:6379/0"),
        ("redis://:hunter2@cache:6380/1", "redis", "redis://cache:6380/1"),
        ("rediss://user:hunter2@cache/2", "redis", "rediss://cache/2"),
    ],
)
def test_store_settings(url: str, kind: str, shown: str) -> None:
    store = build_access_settings({"settings": {"stats_store": url}}, {}).store
    assert store.kind == kind
    assert store.describe() == shown  # credentials never shown


def test_store_defaults() -> None:
    store = build_access_settings({}, {}).store
    assert (store.url, store.prefix, store.flush_interval) == ("memory", "gateway", 1.0)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("gateway.example", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_open_mode_is_refused_off_loopback_only() -> None:
    open_settings = build_access_settings({}, {})
    assert open_mode_refusal(open_settings, "127.0.0.1") is None
    refusal = open_mode_refusal(open_settings, "0.0.0.0")
    assert refusal is not None and "auth: none" in refusal and "0.0.0.0" in refusal
    assert open_mode_refusal(build_access_settings({"auth": "none"}, {}), "0.0.0.0") is None
    assert open_mode_refusal(build_access_settings({"keys": TEAM}, {}), "0.0.0.0") is None


def test_several_workers_on_an_embedded_store_are_warned_about() -> None:
    embedded = build_access_settings({"settings": {"stats_store": "/tmp/usage.db"}}, {})
    shared = build_access_settings({"settings": {"stats_store": "redis://127.0.0.1:6379/0"}}, {})
    warning = multi_process_warning(embedded, 4)
    assert warning is not None and "4 workers" in warning and "redis://" in warning
    assert multi_process_warning(embedded, 1) is None
    assert multi_process_warning(shared, 4) is None
