"""Gateway keys: who may call, which models they may use, and their limits.

A key is known only by the SHA-256 digest of its secret. The secret comes from the environment
(`secret: ${TEAM_A_KEY}`, or the `API_KEY` variable in simple mode) and is hashed when the config is
built; a route file may instead hold the digest itself (`secret: sha256:<64 hex>`). The plaintext is never
kept, logged or shown: a key is shown as its name and `fingerprint` (the first 8 hex digits of the digest).

Lookup hashes the presented key once and looks the digest up in a dict. That is constant-time where it
matters: the only comparison that depends on a stored secret is between SHA-256 digests, and the
attacker chose the preimage of one of them; timing can at best reveal how many leading bytes of *their
own guess's digest* match a stored digest, which says nothing about a preimage (SHA-256 preimage
resistance). Comparing the presented plaintext with each secret byte by byte would leak; we never do.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gateway.config.models import HASH_PREFIX, KeyConfig, KeyLimits, Role, secret_digest
from gateway.routing.table import RouteMatch

__all__ = [
    "HASH_PREFIX",
    "GatewayKey",
    "KeyLimits",
    "KeyRing",
    "Role",
    "hash_secret",
    "key_from_config",
    "make_key",
    "presented_key",
    "secret_digest",
]

_BEARER = "bearer "


@dataclass(frozen=True, slots=True)
class GatewayKey:
    name: str
    digest: bytes  # sha256 of the secret; the secret itself is never kept
    models: tuple[str, ...] = ()  # globs of allowed client-facing model names; empty = every model
    limits: KeyLimits = field(default_factory=KeyLimits)
    role: Role = "user"
    _patterns: tuple[re.Pattern[str], ...] = ()

    @property
    def fingerprint(self) -> str:
        """What logs and /stats show instead of the secret: 8 hex digits of its digest."""
        return self.digest.hex()[:8]

    @property
    def label(self) -> str:
        return f"{self.name} ({self.fingerprint})"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def allows(self, match: RouteMatch) -> bool:
        """The model asked for matches an allowed glob; an alias also counts as its route's model."""
        if not self._patterns:
            return True
        names = (match.model, match.route.model) if match.kind == "alias" else (match.model,)
        return any(pattern.match(name) for pattern in self._patterns for name in names)


def make_key(
    name: str,
    secret: str,
    *,
    models: Iterable[str] = (),
    limits: KeyLimits | None = None,
    role: Role = "user",
) -> GatewayKey:
    """A key from its secret (plaintext, hashed here) or its `sha256:<hex>` digest."""
    if not secret:
        raise ValueError(f"key {name!r} has an empty secret")
    return _key(name, secret_digest(secret), tuple(models), limits or KeyLimits(), role)


def key_from_config(key: KeyConfig) -> GatewayKey:
    """The key of a loaded config (already hashed by the loader), with its model globs compiled."""
    return _key(key.name, key.digest, key.models, key.limits, key.role)


def _key(name: str, digest: bytes, globs: tuple[str, ...], limits: KeyLimits, role: Role) -> GatewayKey:
    return GatewayKey(
        name=name,
        digest=digest,
        models=globs,
        limits=limits,
        role=role,
        _patterns=tuple(re.compile(fnmatch.translate(glob)) for glob in globs),
    )


def hash_secret(secret: str) -> str:
    """The `sha256:<hex>` form to put in a route file instead of the key (`gateway hash-key`)."""
    return HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


class KeyRing:
    """The keys of one config, by digest."""

    __slots__ = ("_by_digest", "keys")

    def __init__(self, keys: Iterable[GatewayKey]) -> None:
        self.keys: tuple[GatewayKey, ...] = tuple(keys)
        self._by_digest: dict[bytes, GatewayKey] = {}
        for key in self.keys:
            other = self._by_digest.setdefault(key.digest, key)
            if other is not key:
                raise ValueError(f"keys {other.name!r} and {key.name!r} have the same secret")

    def __len__(self) -> int:
        return len(self.keys)

    def find(self, presented: str) -> GatewayKey | None:
        """The key whose secret is `presented` (see the module docstring on timing)."""
        return self._by_digest.get(hashlib.sha256(presented.encode()).digest())

    def by_name(self) -> dict[str, GatewayKey]:
        return {key.name: key for key in self.keys}


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: `Authorization: Bearer <key>`, else `x-api-key: <key>`."""
    authorization = headers.get("authorization")
    if authorization and authorization[:7].lower() == _BEARER:
        token = authorization[7:].strip()
        if token:
            return token
    token = (headers.get("x-api-key") or "").strip()
    return token or None
