"""Access control for one gateway: authenticate a request, check its model and limits, own the store.

The API calls it in two steps, so a bad key is refused before the body is even read:

    key = access.authenticate(request.headers)        # 401: no key, unknown key
    headers = await access.admit(key, match)          # 403: model not allowed; 429: over a limit

With no keys configured the app holds no controller at all, so the open path costs one attribute check.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from gateway.access.keys import GatewayKey, presented_key
from gateway.access.recorder import UsageRecorder
from gateway.access.redis_store import RedisStore
from gateway.access.settings import AccessSettings, StoreSettings
from gateway.access.shadow import ShadowCounts
from gateway.access.sqlite_store import SQLiteStore
from gateway.access.store import StoreUnavailable, UsageStore
from gateway.access.store_guard import StoreGuard
from gateway.access.usage import render_stats
from gateway.errors import LimitsUnavailable, PermissionDenied, Unauthorized
from gateway.routing.table import RouteMatch

logger = logging.getLogger("gateway.access")

_MISSING = (
    "You didn't provide an API key. Send your gateway key as `Authorization: Bearer <key>` "
    "or in the `x-api-key` header."
)
_UNKNOWN = "Incorrect API key provided: no gateway key matches it."


def create_store(settings: StoreSettings) -> UsageStore:
    """The store `settings.stats_store` names; the caller's lifespan opens and closes it."""
    return RedisStore(settings) if settings.kind == "redis" else SQLiteStore(settings)


class AccessController:
    """Keys and limits of the current config, over a store that lives as long as the app."""

    def __init__(self, settings: AccessSettings, store: UsageStore) -> None:
        self.settings = settings
        self.store = store
        self._by_name: dict[str, GatewayKey] = settings.keys.by_name()
        self.recorder = UsageRecorder(store, self.keys_by_name, settings.store.flush_interval)
        self.store_guard = StoreGuard(store.description, settings.store.failure_mode)
        self.shadow = ShadowCounts()  # would-blocks of limits in shadow mode, kept across reloads

    def keys_by_name(self) -> Mapping[str, GatewayKey]:
        return self._by_name

    def configure(self, settings: AccessSettings) -> None:
        """Take the keys of a reloaded config (the store stays: it is chosen at startup)."""
        self.settings = settings
        self._by_name = settings.keys.by_name()
        self.store_guard.mode = settings.store.failure_mode  # the mode may change; the store may not

    @property
    def enforced(self) -> bool:
        return self.settings.enforced

    def authenticate(self, headers: Mapping[str, str]) -> GatewayKey:
        presented = presented_key(headers)
        if presented is None:
            raise Unauthorized(_MISSING, code="missing_api_key")
        key = self.settings.keys.find(presented)
        if key is None:
            raise Unauthorized(_UNKNOWN, code="invalid_api_key")
        return key

    def admin_key(self, headers: Mapping[str, str]) -> GatewayKey:
        """The admin key of this request: 401 without a valid key, 403 with a non-admin one."""
        key = self.authenticate(headers)
        if not key.is_admin:
            raise PermissionDenied(
                f"The key {key.name!r} is not an admin key: this endpoint needs role admin.",
                code="admin_required",
            )
        return key

    async def admit(self, key: GatewayKey, match: RouteMatch) -> dict[str, str] | None:
        """The rate-limit headers for the response, or None when the key has no limits."""
        if not key.allows(match):
            raise PermissionDenied(
                f"The key {key.name!r} is not allowed to use the model `{match.model}`.",
                param="model",
                code="model_not_allowed",
            )
        if not key.limits.any:
            return None
        guard = self.store_guard
        if guard.resting():  # a failure just now: do not make every request wait on a dead store
            guard.without_store()
            return None
        try:
            admission = await self.store.admit(key.name, key.limits)
        except StoreUnavailable as exc:
            guard.failed(str(exc))
            guard.without_store()  # raises LimitsUnavailable in fail_closed mode
            return None
        if guard.down_since is not None:
            guard.answered()
        if not admission.allowed:
            raise admission.error(key.name, key.limits)
        if admission.would_block:
            self.shadow.observed(key.name, admission.would_block)
        return admission.headers()

    async def stats(self) -> dict[str, object]:
        await self.recorder.flush()
        try:
            rows = await self.store.read_usage()
        except StoreUnavailable as exc:
            raise LimitsUnavailable(
                f"Usage statistics are unavailable: the usage store cannot answer ({exc}).",
                headers={"retry-after": "1"},
            ) from None
        return render_stats(rows, self.settings.keys.keys, self.store.description)

    async def start(self) -> None:
        """Open the store; a store that cannot answer yet is an outage (the failure mode applies), not a
        reason to refuse to start: the first request that needs it asks again."""
        try:
            await self.store.open()
        except StoreUnavailable as exc:
            self.store_guard.failed(str(exc))
            logger.error("usage store %s unavailable at startup: %s", self.store.description, exc)
        self.recorder.start()

    async def aclose(self) -> None:
        try:
            await self.recorder.aclose()
        finally:
            await self.store.aclose()
