"""Each worker's config version and last reload in `GET /admin/config` (`workers`, `converged`).

One process: its own entry. With `--workers N` (a shared metrics directory, `$PROMETHEUS_MULTIPROC_DIR`)
each worker publishes its entry as a file after startup and after every reload attempt and removes it when
it stops (`observe/worker_config.py`); the worker that answers reads them all, with its own entry taken
live rather than from its file.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from gateway.observe.metrics import MULTIPROCESS_ENV
from gateway.observe.worker_config import WorkerConfig, WorkerConfigFiles
from gateway.runtime.reload import ReloadManager
from gateway.runtime.snapshot import RuntimeHolder

logger = logging.getLogger("gateway")


def worker_config(holder: RuntimeHolder, reloader: ReloadManager) -> WorkerConfig:
    """This process's entry, from the served snapshot and the reload manager (attribute reads)."""
    runtime, last = holder.current, reloader.last_attempt
    return WorkerConfig(
        pid=os.getpid(),
        version=runtime.config.version,
        loaded_at=runtime.loaded_at,
        reload_count=reloader.reload_count,
        rejected_count=reloader.rejected_count,
        last_reload_at=None if last is None else last.at,
        last_reload_outcome=None if last is None else last.outcome,
        serving_last_good=last is not None and last.outcome == "rejected",
    )


def publish_worker_config(holder: RuntimeHolder, reloader: ReloadManager) -> WorkerConfigFiles | None:
    """Publish this worker's entry now and after every reload attempt, when workers share a directory;
    the caller removes it (`files.remove()`) at shutdown. None in a single process without one."""
    directory = os.environ.get(MULTIPROCESS_ENV)
    if not directory:
        return None
    files = WorkerConfigFiles(directory)

    def publish() -> None:
        try:
            files.publish(worker_config(holder, reloader))
        except OSError as exc:  # a full or read-only disk must not stop the worker from serving
            logger.warning("cannot publish this worker's config state in %s: %s", directory, exc)

    publish()
    reloader.on_attempt.append(lambda _: publish())
    return files


async def workers_report(
    holder: RuntimeHolder, reloader: ReloadManager, files: WorkerConfigFiles | None
) -> list[dict[str, Any]]:
    """Every live worker's entry, by pid (this one's read live)."""
    own = worker_config(holder, reloader)
    others = [] if files is None else await asyncio.to_thread(files.read_all)
    entries = [entry for entry in others if entry.pid != own.pid] + [own]
    return [entry.report() for entry in sorted(entries, key=lambda entry: entry.pid)]
