"""The workers' config files: published whole, read back by any worker, and gone with their process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gateway.observe.worker_config import WorkerConfig, WorkerConfigFiles, remove_worker_files


def state(pid: int, version: str = "a561755b82a2") -> WorkerConfig:
    return WorkerConfig(
        pid=pid,
        version=version,
        loaded_at=1_700_000_000.5,
        reload_count=2,
        rejected_count=1,
        last_reload_at=1_700_000_100.0,
        last_reload_outcome="rejected",
        serving_last_good=True,
    )


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_published_state_reads_back_and_reports_times_in_iso(tmp_path: Path) -> None:
    files = WorkerConfigFiles(str(tmp_path))
    files.publish(state(os.getpid()))
    files.publish(state(os.getpid(), "b00000000000"))  # replaced whole
    [read] = files.read_all()
    assert read == state(os.getpid(), "b00000000000")
    report = read.report()
    assert report["loaded_at"] == "2023-11-14T22:13:20.500Z"
    assert report["last_reload"] == {"at": "2023-11-14T22:15:00.000Z", "outcome": "rejected"}
    assert report["serving_last_good"] is True
    assert [path.name for path in tmp_path.iterdir()] == [f"worker-config-{os.getpid()}.json"]


def test_a_dead_workers_file_is_skipped_and_removed_and_garbage_ignored(tmp_path: Path) -> None:
    gone = dead_pid()
    WorkerConfigFiles(str(tmp_path), pid=gone).publish(state(gone))
    (tmp_path / "worker-config-1.json").write_text("{not json", encoding="utf-8")
    mine = WorkerConfigFiles(str(tmp_path))
    mine.publish(state(os.getpid()))
    assert [entry.pid for entry in mine.read_all()] == [os.getpid()]
    assert not (tmp_path / f"worker-config-{gone}.json").exists()
    mine.remove()
    mine.remove()  # twice is fine
    remove_worker_files(str(tmp_path))
    assert list(tmp_path.iterdir()) == []
