"""The app's one typed state object, and the accessors every handler (and the CLI) reads it through.

Two stages, explicit in the types: `create_app` builds a `GatewayState` with what exists before the server
starts (settings, observers, metrics, the in-flight tracker); the lifespan builds the runtime, the reload
manager, the health checker and access control and publishes them at once as `GatewayState.started`
(a `Started`), which is None until then. `state.running()` is how a handler gets it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request

from gateway.access.controller import AccessController
from gateway.access.settings import AccessSettings
from gateway.config.models import EdgeSettings
from gateway.observe.metrics import GatewayMetrics
from gateway.observe.tracing import Tracing
from gateway.observe.worker_config import WorkerConfigFiles
from gateway.records import RequestObserver, StreamObserver
from gateway.resilience.checker import HealthChecker
from gateway.runtime.drain import Drain
from gateway.runtime.inflight import InflightTracker
from gateway.runtime.reload import ReloadManager
from gateway.runtime.snapshot import RuntimeHolder
from gateway.streaming.late_watch import LateWatches
from gateway.translate.tokenizer import LazyTokenizer

# Raises `Unauthorized` / `PermissionDenied` unless the request may use `/admin/*`.
AdminGuard = Callable[[Request], Awaitable[None]]


# Seconds a non-streaming request waits before it watches for its client leaving (noticed within twice
# that): quick answers cost no watcher at all (streaming/late_watch.py).
LATE_WATCH_DELAY = 0.1


@dataclass(slots=True)
class Started:
    """What the lifespan builds; lives until shutdown."""

    holder: RuntimeHolder  # `holder.current` is the snapshot a request is served from
    reloader: ReloadManager
    health_checker: HealthChecker
    # Always there: it owns the usage store and the usage observer.
    access_control: AccessController
    # The same object while keys are enforced, else None: the chat path checks only this (a reload may
    # change it, see `api/auth.py`).
    access: AccessController | None
    # This worker's published config state, when workers share a directory (`api/workers.py`).
    worker_files: WorkerConfigFiles | None = None


@dataclass(slots=True)
class GatewayState:
    """Everything the handlers share, on `app.state.gateway`."""

    config_paths: list[str | Path]
    access_settings: AccessSettings  # of the startup config: `gateway serve` checks it against --host
    tracker: InflightTracker
    metrics: GatewayMetrics | None  # None: metrics turned off
    # CORS and input limits of the served config: read per request by api/cors.py and api/limits.py,
    # replaced on every reload (one attribute, so the middleware costs one read when CORS is off).
    edge: EdgeSettings = field(default_factory=EdgeSettings)
    # Told of every finished chat request (metrics, access log; usage accounting joins in the lifespan).
    observers: list[RequestObserver] = field(default_factory=list)
    stream_observers: list[StreamObserver] = field(default_factory=list)
    # Checked first by every `/admin/*` handler; None leaves them open (access control installs one).
    admin_guard: AdminGuard | None = None
    started: Started | None = None  # set by the lifespan
    # Requests in flight for the shutdown, and whether it has begun (`/health` answers 503 from then).
    drain: Drain = field(default_factory=Drain)
    # Non-streaming requests whose answer is slow get a disconnect watcher (the lifespan runs its sweeper).
    late_watches: LateWatches = field(default_factory=lambda: LateWatches(LATE_WATCH_DELAY))
    # OpenTelemetry traces; None: off (the lifespan starts them, `api/admit.py` checks only this).
    tracing: Tracing | None = None
    # Charges streams cut before their usage; loaded by the first one (never at startup).
    tokenizer: LazyTokenizer = field(default_factory=LazyTokenizer)

    def use_edge(self, edge: EdgeSettings) -> None:
        """Serve with the CORS and input limits of a reloaded config from the next request on."""
        self.edge = edge

    def running(self) -> Started:
        """The lifespan's part; a `RuntimeError` when the app is served without its lifespan."""
        started = self.started
        if started is None:
            raise RuntimeError("the gateway has not started: serve the app with its lifespan on")
        return started


def gateway_state(request: Request) -> GatewayState:
    """The state of the app serving `request`."""
    state: GatewayState = request.app.state.gateway
    return state


def app_state(app: Starlette) -> GatewayState:
    """The state of `app` (made by `create_app`), for the CLI and tests."""
    state: GatewayState = app.state.gateway
    return state
