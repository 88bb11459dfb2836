"""Gateway keys: how a presented key is found, what a key allows, how it is shown."""

from __future__ import annotations

import hashlib

import pytest

from gateway.access.keys import KeyLimits, KeyRing, hash_secret, make_key, presented_key
from gateway.config.models import RouteConfig, Target
from gateway.routing.table import RouteMatch


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": "Bearer sk-1"}, "sk-1"),
        ({"authorization": "bearer   sk-1  "}, "sk-1"),
        ({"authorization": "BEARER sk-1"}, "sk-1"),
        ({"x-api-key": "sk-2"}, "sk-2"),
        ({"x-api-key": "  sk-2 "}, "sk-2"),
        ({"authorization": "Bearer sk-1", "x-api-key": "sk-2"}, "sk-1"),
        ({"authorization": "Basic dXNlcjpwdw==", "x-api-key": "sk-2"}, "sk-2"),  # not ours: try x-api-key
        ({"authorization": "Basic dXNlcjpwdw=="}, None),
        ({"authorization": "Bearer "}, None),
        ({"authorization": "Bearer"}, None),
        ({"x-api-key": "   "}, None),
        ({}, None),
    ],
)
def test_presented_key(headers: dict[str, str], expected: str | None) -> None:
    assert presented_key(headers) == expected


def test_a_key_is_found_by_its_secret_whether_configured_plain_or_hashed() -> None:
    ring = KeyRing([make_key("plain", "sk-plain"), make_key("hashed", hash_secret("sk-hashed"))])
    found = ring.find("sk-plain")
    assert found is not None and found.name == "plain"
    found = ring.find("sk-hashed")
    assert found is not None and found.name == "hashed"
    assert ring.find("sk-other") is None
    assert ring.find(hash_secret("sk-hashed")) is None  # the hash itself is not a valid key


def test_a_key_keeps_only_the_digest_and_shows_a_short_fingerprint() -> None:
    key = make_key("team-a", "sk-team-a-secret")
    digest = hashlib.sha256(b"sk-team-a-secret").digest()
    assert key.digest == digest
    assert key.fingerprint == digest.hex()[:8]
    assert key.label == f"team-a ({digest.hex()[:8]})"
    assert "sk-team-a-secret" not in repr(key)


def test_hash_secret_matches_sha256_and_uppercase_hex_is_accepted() -> None:
    assert hash_secret("abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    upper = "sha256:" + hashlib.sha256(b"abc").hexdigest().upper()
    assert make_key("k", upper).digest == hashlib.sha256(b"abc").digest()


def test_two_keys_with_the_same_secret_are_refused() -> None:
    with pytest.raises(ValueError, match="'a' and 'b' have the same secret"):
        KeyRing([make_key("a", "same"), make_key("b", hash_secret("same"))])


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty secret"):
        make_key("k", "")


def _match(route_model: str, asked: str, kind: str, aliases: tuple[str, ...] = ()) -> RouteMatch:
    route = RouteConfig(name=route_model, model=route_model, targets=(Target("p"),), aliases=aliases)
    return RouteMatch(route, kind, asked)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("globs", "match", "allowed"),
    [
        ((), _match("anything", "anything", "exact"), True),
        (("deepseek-*",), _match("deepseek-chat", "deepseek-chat", "exact"), True),
        (("deepseek-*",), _match("yi-*", "yi-large", "pattern"), False),
        (("yi-large",), _match("yi-*", "yi-large", "pattern"), True),
        (("yi-large",), _match("yi-*", "yi-lightning", "pattern"), False),
        # an alias is its route's model: allowing the model allows its aliases
        (("deepseek-chat",), _match("deepseek-chat", "ds", "alias", ("ds",)), True),
        (("ds",), _match("deepseek-chat", "ds", "alias", ("ds",)), True),
        (("gpt-4o",), _match("deepseek-chat", "ds", "alias", ("ds",)), False),
        (("Deepseek-*",), _match("deepseek-chat", "deepseek-chat", "exact"), False),  # case-sensitive
        (("mock", "deepseek-?hat"), _match("deepseek-chat", "deepseek-chat", "exact"), True),
    ],
)
def test_model_allowlist(globs: tuple[str, ...], match: RouteMatch, allowed: bool) -> None:
    assert make_key("k", "s", models=globs).allows(match) is allowed


def test_limits_flags() -> None:
    assert not KeyLimits().any
    assert KeyLimits(requests_per_minute=1).any and not KeyLimits(requests_per_minute=1).counts_tokens
    assert KeyLimits(tokens_per_day=5).counts_tokens
