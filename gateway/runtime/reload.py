"""Hot reload: route files -> new runtime -> one swap, with the last good config kept on any error.

A reload (from the file watcher, SIGHUP, or a caller) runs these steps, one reload at a time:

1. load and validate every route file (schema, then semantics), off the event loop; when a file changed
   while it was being read (an in-place write still in progress), read again once it holds still;
2. on any error keep serving the current runtime, log each error at file:line:col and keep it for
   `GET /admin/config` (last good wins: a bad edit is rejected whole, never half applied);
3. build the new runtime, reusing each provider whose definition did not change (pool, health state and
   breaker included), and swap `RuntimeHolder.current` in one assignment; requests already in flight
   keep the runtime they read;
4. close the providers the new config dropped or changed once every request that started before the swap
   has finished (see `inflight.py`), or after `retire_timeout` seconds at the latest: a stream with no
   timeouts configured must not hold a retired connection pool forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from gateway.config import Diagnostic, LoadResult, load_config
from gateway.config.watcher import ConfigWatcher, route_file_state
from gateway.providers.base import Provider
from gateway.runtime.inflight import InflightTracker
from gateway.runtime.snapshot import Runtime, RuntimeHolder, build_runtime

logger = logging.getLogger("gateway.reload")

Outcome = Literal["applied", "unchanged", "rejected"]
Loader = Callable[[Sequence[str | Path]], LoadResult]
SwapListener = Callable[[Runtime, Runtime], None]
AttemptListener = Callable[["ReloadAttempt"], None]

DEFAULT_RETIRE_TIMEOUT = 600.0
# A load counts only if the files look the same `SETTLE_DELAY` seconds after it as before it.
SETTLE_DELAY = 0.05
SETTLE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class ReloadAttempt:
    at: float  # time.time()
    trigger: str
    outcome: Outcome
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def errors(self) -> list[Diagnostic]:
        return [diagnostic for diagnostic in self.diagnostics if diagnostic.is_error]


class ReloadManager:
    """Owns reloading for one app: the watcher task, the SIGHUP handler and the retiring providers."""

    def __init__(
        self,
        holder: RuntimeHolder,
        paths: Sequence[str | Path],
        tracker: InflightTracker,
        *,
        warnings: Sequence[Diagnostic] = (),
        loader: Loader = load_config,
        retire_timeout: float = DEFAULT_RETIRE_TIMEOUT,
    ) -> None:
        self.holder = holder
        self.paths = list(paths)
        self.tracker = tracker
        self.loader = loader
        self.retire_timeout = retire_timeout
        self.warnings = tuple(warnings)  # of the config being served
        self.reload_count = 0  # reloads applied (the runtime was swapped)
        self.attempt_count = 0
        self.rejected_count = 0
        self.last_attempt: ReloadAttempt | None = None
        self.last_error: ReloadAttempt | None = None
        self.watching = False
        self.sighup_installed = False
        # Called after each swap with (old, new) runtime, e.g. for health checkers to follow the config.
        self.on_swap: list[SwapListener] = []
        # Called after every reload attempt, whatever its outcome (after the swap listeners when applied).
        self.on_attempt: list[AttemptListener] = []
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retiring: set[Provider] = set()

    # Starting and stopping.

    def start(self, *, watch: bool, watcher: ConfigWatcher | None = None) -> None:
        """Start watching the config paths (unless `watch` is false) and listen for SIGHUP."""
        if watch:
            self._spawn(self._watch(watcher or ConfigWatcher(self.paths)), "config-watcher")
            self.watching = True
        self.sighup_installed = self._install_sighup()

    async def aclose(self) -> None:
        """Stop watching and close every retired provider (the caller closes the current runtime)."""
        self._stop.set()
        if self.sighup_installed:
            with contextlib.suppress(RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self.sighup_installed = False
        tasks = list(self._tasks)
        for task in tasks:
            if task.get_name() != "config-watcher":
                task.cancel()  # retirements: close now, the server is stopping
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        self.watching = False

    # Reloading.

    def request_reload(self, trigger: str) -> None:
        """Schedule a reload from synchronous code (the SIGHUP handler)."""
        self._spawn(self.reload(trigger), f"reload: {trigger}")

    async def reload(self, trigger: str) -> Outcome:
        """Load the route files and swap them in when valid. Never raises for a bad config."""
        async with self._lock:
            self.attempt_count += 1
            try:
                result = await asyncio.to_thread(self._load_settled)
            except Exception as exc:  # a loader bug must not take the watcher down
                logger.exception("config reload (%s) failed", trigger)
                result = LoadResult(None, [Diagnostic("<reload>", None, None, f"reload failed: {exc!r}")])
            if result.config is None:
                return self._reject(trigger, result.diagnostics)
            current = self.holder.current
            config = result.config
            if config.version == current.config.version and config.sources == current.config.sources:
                self.warnings = tuple(result.warnings)
                found = tuple(result.diagnostics)
                self.last_attempt = ReloadAttempt(time.time(), trigger, "unchanged", found)
                logger.debug("config reload (%s): unchanged (version %s)", trigger, config.version)
                self._tell_attempt(self.last_attempt)
                return "unchanged"
            try:
                runtime, retired = build_runtime(config, current)
            except Exception as exc:
                logger.exception("config reload (%s): building the runtime failed", trigger)
                problem = Diagnostic("<reload>", None, None, f"building the runtime failed: {exc!r}")
                return self._reject(trigger, [*result.diagnostics, problem])
            # The swap and the generation step happen together, with no await in between (see inflight.py).
            self.holder.swap(runtime)
            ended = self.tracker.advance()
            self.reload_count += 1
            self.warnings = tuple(result.warnings)
            found = tuple(result.diagnostics)
            self.last_attempt = ReloadAttempt(runtime.loaded_at, trigger, "applied", found)
            self._log_applied(trigger, current, runtime, retired)
            for listener in self.on_swap:
                try:
                    listener(current, runtime)
                except Exception:
                    logger.exception("reload listener %r failed", listener)
            self._tell_attempt(self.last_attempt)
            if retired:
                self._retiring.update(retired)
                self._spawn(self._retire(retired, ended), "retire-providers")
            return "applied"

    def _tell_attempt(self, attempt: ReloadAttempt) -> None:
        for listener in self.on_attempt:
            try:
                listener(attempt)
            except Exception:
                logger.exception("reload attempt listener %r failed", listener)

    def _load_settled(self) -> LoadResult:
        """Load until the files did not change during the load (runs in a worker thread)."""
        before = route_file_state(self.paths)
        result = self.loader(self.paths)
        for _ in range(SETTLE_ATTEMPTS - 1):
            time.sleep(SETTLE_DELAY)
            after = route_file_state(self.paths)
            if after == before:
                break
            before, result = after, self.loader(self.paths)
        return result

    def _reject(self, trigger: str, diagnostics: Sequence[Diagnostic]) -> Outcome:
        attempt = ReloadAttempt(time.time(), trigger, "rejected", tuple(diagnostics))
        self.last_attempt = self.last_error = attempt
        self.rejected_count += 1
        errors = attempt.errors or list(diagnostics)
        logger.error(
            "config reload (%s) rejected, still serving version %s: %d error(s)\n%s",
            trigger,
            self.holder.current.config.version,
            len(errors),
            "\n".join(str(diagnostic) for diagnostic in errors),
        )
        self._tell_attempt(attempt)
        return "rejected"

    def _log_applied(self, trigger: str, old: Runtime, new: Runtime, retired: list[Provider]) -> None:
        kept = {id(provider) for provider in old.registry}
        fresh = sorted(provider.name for provider in new.registry if id(provider) not in kept)
        logger.info(
            "config reloaded (%s): version %s -> %s, %d routes, %d providers (new or changed: %s; "
            "retired: %s)",
            trigger,
            old.config.version,
            new.config.version,
            len(new.table.routes),
            len(new.registry),
            ", ".join(fresh) or "none",
            ", ".join(sorted(provider.name for provider in retired)) or "none",
        )
        for diagnostic in self.warnings:
            logger.warning("config warning: %s", diagnostic)

    async def _retire(self, providers: list[Provider], generation: int) -> None:
        """Close `providers` once no request that could use them is in flight."""
        try:
            await asyncio.wait_for(self.tracker.drained(generation), self.retire_timeout)
        except TimeoutError:
            logger.warning(
                "closing retired providers %s with %d request(s) still in flight after %.0fs",
                ", ".join(provider.name for provider in providers),
                self.tracker.in_flight(generation),
                self.retire_timeout,
            )
        finally:
            for provider in providers:
                try:
                    await provider.aclose()
                except Exception:
                    logger.exception("closing retired provider %s failed", provider.name)
                self._retiring.discard(provider)

    # Triggers.

    async def _watch(self, watcher: ConfigWatcher) -> None:
        directories = ", ".join(str(directory.path) for directory in watcher.directories)
        logger.info("watching %s for config changes", directories)
        try:
            async for names in watcher.changes(self._stop):
                trigger = f"changed: {', '.join(names)}" if names else "config directory re-watched"
                await self.reload(trigger)
        except Exception:
            logger.exception("the config watcher crashed; reload with SIGHUP until the gateway restarts")
        finally:
            self.watching = False

    def _install_sighup(self) -> bool:
        """SIGHUP reloads. Only possible in the main thread (uvicorn itself handles only INT and TERM)."""
        if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
            return False
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.request_reload, "SIGHUP")
        except (NotImplementedError, RuntimeError, ValueError):
            return False
        return True

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # Reporting.

    def status(self) -> dict[str, Any]:
        """What `GET /admin/config` shows."""
        runtime = self.holder.current
        last = self.last_attempt
        return {
            "version": runtime.config.version,
            "loaded_at": _iso(runtime.loaded_at),
            "sources": list(runtime.config.sources),
            "paths": [str(path) for path in self.paths],
            "routes": len(runtime.table.routes),
            "providers": len(runtime.registry),
            "reload_count": self.reload_count,
            "reload_attempts": self.attempt_count,
            "rejected_count": self.rejected_count,
            "watching": self.watching,
            "sighup": self.sighup_installed,
            # True while the files on disk are rejected and an older, valid config is being served.
            "serving_last_good": last is not None and last.outcome == "rejected",
            "last_reload": None
            if last is None
            else {"at": _iso(last.at), "trigger": last.trigger, "outcome": last.outcome},
            "last_error": None if self.last_error is None else _error_report(self.last_error),
            "warnings": [_diagnostic_report(diagnostic) for diagnostic in self.warnings],
            "in_flight": self.tracker.in_flight(),
            "retiring_providers": sorted(provider.name for provider in self._retiring),
        }


def _error_report(attempt: ReloadAttempt) -> dict[str, Any]:
    errors = attempt.errors or list(attempt.diagnostics)
    return {
        "at": _iso(attempt.at),
        "trigger": attempt.trigger,
        "message": errors[0].headline if errors else "rejected",
        "errors": [_diagnostic_report(diagnostic) for diagnostic in errors],
    }


def _diagnostic_report(diagnostic: Diagnostic) -> dict[str, Any]:
    return {**diagnostic.to_dict(), "location": diagnostic.location}


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
