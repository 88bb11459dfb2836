"""The HTTP side of access control: building it for the app, and the admin check for admin endpoints.

`Started.access_control` (api/state.py) is the `AccessController` (always there: it owns the usage store
and the usage observer). `Started.access` is the same object when keys are enforced and None otherwise: the
chat endpoint checks only that one attribute, so the open path stays as fast as without access control.

Other endpoints that need the admin role (`/stats`, `/metrics`, `/admin/*`) call `require_admin(request)`
(raises 401/403 as OpenAI errors) or `is_admin(request)`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from starlette.requests import Request

from gateway.access.controller import AccessController, create_store
from gateway.access.settings import AccessSettings, settings_from_config
from gateway.api.state import GatewayState, Started, gateway_state
from gateway.config.models import GatewayConfig
from gateway.errors import GatewayError

logger = logging.getLogger("gateway.access")


def access_settings(config: GatewayConfig, environ: Mapping[str, str] | None = None) -> AccessSettings:
    """The access settings of `config`. The loader already checked them (with file:line:col, exactly as
    `validate-config` does) and read the API_KEY variable, so `environ` is no longer consulted."""
    del environ  # kept for callers; the loader's environment decided API_KEY
    return settings_from_config(config.access)


async def start_access(state: GatewayState, settings: AccessSettings) -> AccessController:
    """Open the usage store, register the usage observer and the admin guard of `/admin/*` on `state`.
    The lifespan publishes the controller (`apply_access`) and closes it with `await controller.aclose()`."""
    controller = AccessController(settings, create_store(settings.store))
    await controller.start()
    state.observers.append(controller.recorder)
    state.admin_guard = _admin_guard
    logger.info("auth: %s; usage store: %s", settings.describe(), controller.store.description)
    return controller


def apply_access(
    state: Started, controller: AccessController, settings: AccessSettings | None = None
) -> None:
    """Publish `controller` (with the `settings` of a reloaded config, if given) on `state`."""
    if settings is not None:
        controller.configure(settings)
    state.access_control = controller
    state.access = controller if controller.enforced else None


def reload_access(state: Any, controller: AccessController, config: GatewayConfig) -> None:
    """Follow a config reload (a `ReloadManager.on_swap` listener). Keys, allowlists and limits change at
    once. A reload never turns enforced keys off by removing them (that needs an explicit `auth: none`),
    and the usage store stays the one chosen at startup."""
    settings = access_settings(config)  # a reloaded config passed the loader's access checks
    if controller.enforced and settings.mode == "open":
        logger.error(
            "reloaded config has no keys: keeping the previous keys (write `auth: none` to run open)"
        )
        return
    # The store stays the one chosen at startup; its failure mode follows the config.
    if replace(settings.store, failure_mode="fail_closed") != replace(
        controller.settings.store, failure_mode="fail_closed"
    ):
        logger.warning("usage store settings changed: they take effect at the next restart")
    apply_access(state, controller, settings)
    logger.info("auth: %s", settings.describe())


def auth_status(state: GatewayState) -> str:
    """The auth mode for `/health`: `keys`, `open` (no keys, loopback only) or `none` (auth: none)."""
    started = state.started
    return started.access_control.settings.mode if started is not None else "starting"


async def _admin_guard(request: Request) -> None:
    require_admin(request)


def require_admin(request: Request) -> None:
    """Raise 401/403 unless the request carries an admin key. Without enforced keys (open mode on
    loopback, or `auth: none`) every request passes: nothing else is protected either."""
    controller = gateway_state(request).running().access
    if controller is not None:
        controller.admin_key(request.headers)


def is_admin(request: Request) -> bool:
    try:
        require_admin(request)
    except GatewayError:
        return False
    return True
