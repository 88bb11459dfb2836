"""Each worker's served config version and last reload, shared between the processes of `--workers N`.

A scrape or an `/admin/config` request lands on any one worker, which knows only its own config. So each
worker publishes what it serves as one small JSON file in the directory the workers share (the metrics
directory `gateway serve` makes, `$PROMETHEUS_MULTIPROC_DIR`), rewrites it after every reload attempt
(write, then rename: a reader never sees half a file) and removes it when it stops; whichever worker
answers reads them all. A file whose process is gone (a worker killed) is skipped and removed, so a
worker's entry disappears when it exits. Nothing here runs per request.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

FILE_PREFIX = "worker-config-"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What one worker serves: its config version, when it was loaded, and how its last reload went."""

    pid: int
    version: str
    loaded_at: float  # time.time() of the load of the served config (startup or the last applied reload)
    reload_count: int  # reloads applied
    rejected_count: int
    last_reload_at: float | None = None  # the last reload attempt, whatever its outcome
    last_reload_outcome: str | None = None  # applied | unchanged | rejected
    serving_last_good: bool = False  # the files on disk were rejected: an older, valid config serves

    def report(self) -> dict[str, Any]:
        """The worker's entry in `GET /admin/config`'s `workers`."""
        return {
            "pid": self.pid,
            "version": self.version,
            "loaded_at": iso_time(self.loaded_at),
            "reload_count": self.reload_count,
            "rejected_count": self.rejected_count,
            "serving_last_good": self.serving_last_good,
            "last_reload": None
            if self.last_reload_at is None
            else {"at": iso_time(self.last_reload_at), "outcome": self.last_reload_outcome},
        }


class WorkerConfigFiles:
    """The workers' files in `directory`: this process publishes its own and reads everyone's."""

    def __init__(self, directory: str, pid: int | None = None) -> None:
        self.directory = directory
        self.pid = os.getpid() if pid is None else pid
        self.path = os.path.join(directory, f"{FILE_PREFIX}{self.pid}.json")

    def publish(self, state: WorkerConfig) -> None:
        """Write this worker's file whole (a temporary file renamed over the old one)."""
        temporary = f"{self.path}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(asdict(state), file)
        os.replace(temporary, self.path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)

    def read_all(self) -> list[WorkerConfig]:
        """Every live worker's state, by pid. Blocking (reads files): call it off the event loop."""
        found: list[WorkerConfig] = []
        for path in glob.glob(os.path.join(self.directory, f"{FILE_PREFIX}*.json")):
            state = _read(path)
            if state is None:
                continue
            if not process_alive(state.pid):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                continue
            found.append(state)
        return sorted(found, key=lambda state: state.pid)


def remove_worker_files(directory: str) -> None:
    """Drop a previous run's files (a directory that outlives its gateway, given by the environment)."""
    for path in glob.glob(os.path.join(directory, f"{FILE_PREFIX}*.json*")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _read(path: str) -> WorkerConfig | None:
    try:
        with open(path, encoding="utf-8") as file:
            return WorkerConfig(**json.load(file))
    except (OSError, ValueError, TypeError):  # removed meanwhile, or not one of ours
        return None


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
