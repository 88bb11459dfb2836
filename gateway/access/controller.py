"""Access control for one gateway: authenticate a request, check its model and limits, own the store.

The API calls it in two steps, so a bad key is refused before the body is even read:

    key = access.authenticate(request.headers)        # 401: no key, unknown key
    headers = await access.admit(key, match, hold)    # 403: model not allowed; 429: over a limit/budget
    ...
    access.settle(hold, cost)                         # once, when the request ends (budgets only)

With no keys configured the app holds no controller at all, so the open path costs one attribute check.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from gateway.access.budgets import BudgetHold, budget_error, unpriced_error
from gateway.access.keys import GatewayKey, presented_key
from gateway.access.recorder import UsageRecorder
from gateway.access.redis_store import RedisStore
from gateway.access.settings import AccessSettings, StoreSettings
from gateway.access.shadow import ShadowCounts
from gateway.access.sqlite_store import SQLiteStore
from gateway.access.store import Settlement, StoreUnavailable, UsageStore
from gateway.access.store_guard import StoreGuard
from gateway.access.usage import render_stats
from gateway.config.prices import format_cost
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
        self.recorder = UsageRecorder(
            store,
            self.keys_by_name,
            settings.store.flush_interval,
            retention_days=settings.store.retention_days,
        )
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

    async def admit(
        self, key: GatewayKey, match: RouteMatch, hold: BudgetHold | None = None
    ) -> dict[str, str] | None:
        """The rate-limit headers for the response, or None when the key has no limits. `hold` (keys
        with budgets) is checked and reserved with the limits; the caller settles it when the request
        ends, whatever happened (`settle`)."""
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
        amount = None if hold is None else hold.amount
        if hold is not None and amount is None:  # a route target without a price
            self._unpriced(key, match, hold)
        try:
            store = self.store
            admission = await (
                store.admit(key.name, key.limits)
                if amount is None
                else store.admit(key.name, key.limits, amount)
            )
        except StoreUnavailable as exc:
            guard.failed(str(exc))
            guard.without_store()  # raises LimitsUnavailable in fail_closed mode
            return None
        if guard.down_since is not None:
            guard.answered()
        if not admission.allowed:
            verdict = admission.budget
            if hold is not None and amount is not None and verdict is not None and verdict.exceeded:
                raise budget_error(key.name, verdict.exceeded, amount, hold.currency, admission.headers())
            raise admission.error(key.name, key.limits)
        if admission.would_block:
            self.shadow.observed(key.name, admission.would_block)
        headers = admission.headers()
        if hold is not None:
            hold.hold_id, hold.verdict = admission.hold_id, admission.budget
            headers.update(hold.headers())
        return headers

    def _unpriced(self, key: GatewayKey, match: RouteMatch, hold: BudgetHold) -> None:
        """Refuse (403) a request that cannot be priced while an enforced budget applies; with shadow
        budgets only, let it through unreserved: each of them counts a would-block."""
        if any(not budget.shadow for budget in hold.budgets):
            raise unpriced_error(key.name, match.model, hold.unpriced)
        self.shadow.observed(key.name, [budget.name for budget in hold.budgets])

    def settle(self, hold: BudgetHold, cost: int) -> None:
        """The end of a request with budgets: its hold is replaced by `cost` (nano-units), exactly once
        (a second call is a no-op), without I/O: the store takes it at once or with the next flush."""
        if hold.settled:
            return
        hold.settled = True
        if hold.hold_id is None and not cost:
            return  # refused, or nothing held and nothing spent
        settlement = Settlement(hold.key, hold.budgets, hold.hold_id, cost, time.time())
        self.store.settle(settlement)
        self.recorder.settle(settlement)

    async def stats(self) -> dict[str, object]:
        await self.recorder.flush()
        try:
            rows = await self.store.read_usage()
        except StoreUnavailable as exc:
            raise LimitsUnavailable(
                f"Usage statistics are unavailable: the usage store cannot answer ({exc}).",
                headers={"retry-after": "1"},
            ) from None
        document = render_stats(rows, self.settings.keys.keys, self.store.description)
        document["budgets"] = await self._budget_stats()
        return document

    async def _budget_stats(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per key with budgets, each budget's limit, spend, holds in flight, what is left and when its
        period ends (in the document's `currency`)."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for key in self.settings.keys.keys:
            budgets = key.limits.budgets
            if not budgets:
                continue
            try:
                states = await self.store.read_budgets(key.name, budgets)
            except StoreUnavailable as exc:
                raise LimitsUnavailable(
                    f"Usage statistics are unavailable: the usage store cannot answer ({exc}).",
                    headers={"retry-after": "1"},
                ) from None
            out[key.name] = {
                state.name: {
                    "limit": format_cost(state.limit),
                    "spent": format_cost(state.spent),
                    "reserved": format_cost(state.reserved),
                    "remaining": format_cost(state.remaining),
                    "resets_at": round(state.resets_at, 3),
                    "mode": "shadow" if budget.shadow else "enforce",
                    **({"window": budget.window} if budget.window else {}),
                }
                for budget, state in zip(budgets, states, strict=True)
            }
        return out

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
