"""The access settings of one config: auth mode, the key ring and where usage is stored.

Built from the `keys:`, `auth:` and `settings:` sections (`GatewayConfig.extras`, already validated by
the schema and interpolated) plus the `API_KEY` environment variable (simple mode: one admin key).

    auth omitted, some key configured    -> "keys": every chat request needs a key
    auth omitted, no key                 -> "open": no auth; `gateway serve` allows it on loopback only
    auth: keys                           -> "keys"; a config error when there is no key
    auth: none                           -> "none": no auth anywhere, keys ignored (said in the log)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from gateway.access.keys import GatewayKey, KeyLimits, KeyRing, Role, make_key

AuthMode = Literal["keys", "open", "none"]

SIMPLE_MODE_VARIABLE = "API_KEY"
SIMPLE_MODE_KEY_NAME = "API_KEY"
DEFAULT_STORE = "memory"
DEFAULT_PREFIX = "gateway"
DEFAULT_FLUSH_INTERVAL = 1.0
_STORE_SCHEMES = ("redis://", "rediss://", "unix://", "sqlite:///")


class AccessConfigError(ValueError):
    """The keys/auth/settings sections cannot be used (the message never holds a secret)."""


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """`stats_store`: `memory` (default; SQLite in memory, gone on restart), a SQLite file path (or
    `sqlite:///path`), or `redis://host:port/db` (`rediss://` for TLS)."""

    url: str = DEFAULT_STORE
    prefix: str = DEFAULT_PREFIX  # Redis key prefix: several gateways or tests on one Redis
    flush_interval: float = DEFAULT_FLUSH_INTERVAL  # seconds between background writes of usage

    @property
    def kind(self) -> Literal["sqlite", "redis"]:
        return "sqlite" if self.url.startswith("sqlite:///") or "://" not in self.url else "redis"

    @property
    def sqlite_path(self) -> str:
        if self.url == DEFAULT_STORE:
            return ":memory:"
        return self.url.removeprefix("sqlite:///") if self.url.startswith("sqlite:///") else self.url

    def describe(self) -> str:
        """The store for logs and /stats, without credentials."""
        if self.kind == "sqlite":
            return f"sqlite:{self.sqlite_path}"
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True, slots=True)
class AccessSettings:
    mode: AuthMode
    keys: KeyRing = field(default_factory=lambda: KeyRing(()))
    store: StoreSettings = field(default_factory=StoreSettings)
    ignored_keys: int = 0  # keys configured but not checked (auth: none)

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


def build_access_settings(extras: Mapping[str, Any], environ: Mapping[str, str]) -> AccessSettings:
    """Settings for one config; raises `AccessConfigError` for a config no client could use."""
    keys = _build_keys(extras.get("keys") or {})
    simple = environ.get(SIMPLE_MODE_VARIABLE)
    if simple:
        if any(key.name == SIMPLE_MODE_KEY_NAME for key in keys):
            raise AccessConfigError(f"key name {SIMPLE_MODE_KEY_NAME!r} is reserved for the API_KEY variable")
        keys.append(make_key(SIMPLE_MODE_KEY_NAME, simple, role="admin"))
    try:
        ring = KeyRing(keys)
    except ValueError as exc:
        raise AccessConfigError(str(exc)) from None
    store = _build_store(extras.get("settings") or {})
    auth = extras.get("auth")
    if auth == "none":
        return AccessSettings("none", KeyRing(()), store, ignored_keys=len(ring))
    if auth == "keys" and not len(ring):
        raise AccessConfigError(
            "auth: keys but no key is configured: add one under `keys:` or set the API_KEY variable"
        )
    if auth not in (None, "keys"):
        raise AccessConfigError(f"auth must be `keys` or `none`, not {auth!r}")
    return AccessSettings("keys" if len(ring) else "open", ring, store)


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


def _build_keys(section: object) -> list[GatewayKey]:
    if not isinstance(section, Mapping):
        raise AccessConfigError("`keys` must be a mapping of key names to key settings")
    keys: list[GatewayKey] = []
    for name, spec in section.items():
        if not isinstance(spec, Mapping):
            raise AccessConfigError(f"key {name!r} must be a mapping with at least `secret`")
        secret = spec.get("secret")
        if not isinstance(secret, str) or not secret:
            raise AccessConfigError(f"key {name!r} has no secret (`secret: ${{VAR}}` or `sha256:<hex>`)")
        role = spec.get("role", "user")
        if role not in ("user", "admin"):
            raise AccessConfigError(f"key {name!r}: role must be `user` or `admin`")
        models = spec.get("models") or ()
        if not all(isinstance(model, str) and model for model in models):
            raise AccessConfigError(f"key {name!r}: models must be a list of model names or globs")
        keys.append(
            make_key(str(name), secret, models=models, limits=_build_limits(name, spec), role=_role(role))
        )
    return keys


def _build_limits(name: object, spec: Mapping[str, Any]) -> KeyLimits:
    limits = spec.get("limits") or {}
    values: dict[str, int | None] = {}
    for field_name in ("requests_per_minute", "tokens_per_minute", "tokens_per_day"):
        value = limits.get(field_name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise AccessConfigError(f"key {name!r}: limits.{field_name} must be a positive integer")
        values[field_name] = value
    return KeyLimits(**values)


def _role(value: str) -> Role:
    return "admin" if value == "admin" else "user"


def _build_store(settings: Mapping[str, Any]) -> StoreSettings:
    url = settings.get("stats_store", DEFAULT_STORE)
    prefix = settings.get("stats_store_prefix", DEFAULT_PREFIX)
    interval = settings.get("stats_flush_interval", DEFAULT_FLUSH_INTERVAL)
    if not isinstance(url, str) or not url:
        raise AccessConfigError("settings.stats_store must be `memory`, a file path or a redis:// URL")
    if url in ("redis", "rediss") or ("://" in url and not url.startswith(_STORE_SCHEMES)):
        raise AccessConfigError(
            "settings.stats_store must be `memory`, a SQLite file path (or sqlite:///path) "
            "or a redis://host:port/db URL"
        )
    if not isinstance(prefix, str) or not prefix:
        raise AccessConfigError("settings.stats_store_prefix must be a non-empty string")
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 0 < interval <= 60:
        raise AccessConfigError("settings.stats_flush_interval must be a number of seconds in (0, 60]")
    return StoreSettings(url, prefix, float(interval))
