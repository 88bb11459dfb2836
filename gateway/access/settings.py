"""The access settings of one config: auth mode, the key ring and where usage is stored.

The loader builds and checks the `keys:`, `auth:` and `settings:` sections (plus the `API_KEY` variable,
simple mode: one admin key) into `GatewayConfig.access`; here that model becomes the key ring the chat
endpoint looks keys up in. Every rule lives in the config pipeline (`gateway.config.semantics`), so
`gateway serve` refuses exactly what `gateway validate-config` refuses.

    auth omitted, some key configured    -> "keys": every chat request needs a key
    auth omitted, no key                 -> "open": no auth; `gateway serve` allows it on loopback only
    auth: keys                           -> "keys"; a config error when there is no key
    auth: none                           -> "none": no auth anywhere, keys ignored (said in the log)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.access.keys import KeyRing, key_from_config
from gateway.config.budget_models import DEFAULT_BUDGET_MAX_OUTPUT_TOKENS
from gateway.config.builder import build_access
from gateway.config.models import AccessConfig, AuthMode, StoreSettings
from gateway.config.sections import SectionPlaces
from gateway.config.semantics import check_access

__all__ = [
    "AccessConfigError",
    "AccessSettings",
    "AuthMode",
    "StoreSettings",
    "build_access_settings",
    "is_loopback",
    "multi_process_warning",
    "open_mode_refusal",
    "settings_from_config",
]


class AccessConfigError(ValueError):
    """The keys/auth/settings sections cannot be used (the message never holds a secret)."""


@dataclass(frozen=True, slots=True)
class AccessSettings:
    mode: AuthMode
    keys: KeyRing = field(default_factory=lambda: KeyRing(()))
    store: StoreSettings = field(default_factory=StoreSettings)
    ignored_keys: int = 0  # keys configured but not checked (auth: none)
    budget_default_max_output_tokens: int = DEFAULT_BUDGET_MAX_OUTPUT_TOKENS  # reserved without max_tokens

    @property
    def enforced(self) -> bool:
        return self.mode == "keys"

    def describe(self) -> str:
        """One line for the log and /health."""
        if self.mode == "keys":
            admins = sum(1 for key in self.keys.keys if key.is_admin)
            return f"keys ({len(self.keys)} keys, {admins} admin)"
        if self.mode == "none":
            ignored = f"; {self.ignored_keys} configured keys are ignored" if self.ignored_keys else ""
            return f"none (auth: none in the config: every client is allowed{ignored})"
        return "open (no keys configured: allowed on a loopback address only)"


def settings_from_config(access: AccessConfig) -> AccessSettings:
    """The settings of a loaded config's access model (checked by the loader: this cannot fail)."""
    ring = KeyRing(key_from_config(key) for key in access.keys)
    return AccessSettings(
        access.mode, ring, access.store, access.ignored_keys, access.budget_default_max_output_tokens
    )


def build_access_settings(sections: Mapping[str, Any], environ: Mapping[str, str]) -> AccessSettings:
    """Settings from plain sections already interpolated and of the schema's shape (tests, embedding),
    checked by the same rules as a loaded config; raises `AccessConfigError` with the first problem."""
    places = SectionPlaces()
    problems = check_access(sections, environ, places)
    if problems:
        raise AccessConfigError(problems[0].message)
    return settings_from_config(build_access(sections, environ, places))


def is_loopback(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (what `gateway serve --host` may be in open mode)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_mode_refusal(settings: AccessSettings, host: str) -> str | None:
    """Why the gateway must not start open on `host`, or None when it may."""
    if settings.mode != "open" or is_loopback(host):
        return None
    return (
        f"no gateway keys are configured and --host {host} is not a loopback address: anyone who can "
        "reach it could spend your provider credits. Add keys (`keys:` in a route file or the API_KEY "
        "variable), bind to 127.0.0.1, or write `auth: none` in a route file to run open on purpose."
    )


def multi_process_warning(settings: AccessSettings, workers: int) -> str | None:
    """What goes wrong with several worker processes on an embedded store, or None."""
    if workers <= 1 or settings.store.kind == "redis":
        return None
    return (
        f"{workers} workers on the {settings.store.describe()} store: each worker counts request and token "
        "limits on its own (a key gets up to that many times its limit) and /stats shows one worker's "
        "view; set settings.stats_store to a redis:// URL to share them"
    )
