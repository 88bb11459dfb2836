"""Watch the route files' directories and report, debounced, that the config may have changed.

Directories are watched, never single files: editors save by writing a temp file and renaming it over the
old one, and Kubernetes updates a mounted ConfigMap by pointing the `..data` symlink at a new timestamped
directory. Both replace directory entries, which a watch on the old file would miss; a watch on the
directory sees them (the loader then reads files through their symlinks). The watch is not recursive:
route files are only discovered at the top of a directory.

A batch of changes is yielded once the directory has been quiet for `step_ms`, and at the latest
`debounce_ms` after the first change, so an editor's write-rename-chmod burst or a ConfigMap swap gives one
reload, well within a second. The watcher says *that* something changed; the reload manager decides what.

Once a second the watcher also compares each route file's inode, size and modification time with what it
saw last, and notices a replaced directory: a safety net for changes the OS did not report (polling mode
misses a same-size rewrite within the same second; a directory swapped by rename loses its watch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import watchfiles

from .discover import find_route_files, is_route_file_name

logger = logging.getLogger("gateway.config")

DEFAULT_DEBOUNCE_MS = 300
DEFAULT_STEP_MS = 50
# How often the watch wakes without changes to check that the watched directories are still the same ones
# (a deploy may replace the whole directory: `mv routes.new routes`).
IDENTITY_CHECK_MS = 1000
RESTART_DELAY = 1.0

FileState = dict[str, tuple[int, int, int] | None]


def route_file_state(paths: Sequence[str | Path]) -> FileState:
    """Inode, size and modification time (ns) of each route file of `paths`, through symlinks."""
    files, _ = find_route_files(paths)
    state: FileState = {}
    for file in files:
        try:
            stat = file.stat()
        except OSError:
            state[str(file)] = None
        else:
            state[str(file)] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return state


def changed_files(before: FileState, after: FileState) -> list[str]:
    """Names of the files added, removed or changed between two states."""
    return sorted(
        {Path(path).name for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    )


@dataclass(frozen=True, slots=True)
class WatchedDirectory:
    """One directory to watch and which of its entries matter: every route file (`names` is None), or
    only the named files. Entries starting with `..` (the ConfigMap `..data` swap) always matter."""

    path: Path
    names: frozenset[str] | None

    def wants(self, name: str) -> bool:
        if name.startswith(".."):
            return True
        if self.names is None:
            return is_route_file_name(name)
        return name in self.names


def watched_directories(paths: Sequence[str | Path]) -> list[WatchedDirectory]:
    """The directories behind config `paths`: a directory itself, and a file's parent directory."""
    found: dict[Path, set[str] | None] = {}
    for raw in paths:
        path = Path(raw).absolute()
        if path.is_dir():
            found[path] = None
        else:
            names = found.setdefault(path.parent, set())
            if names is not None:
                names.add(path.name)
    return [
        WatchedDirectory(path, None if names is None else frozenset(names)) for path, names in found.items()
    ]


class ConfigWatcher:
    """`async for names in watcher.changes(): ...` yields the sorted entry names of each relevant batch."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        *,
        debounce_ms: int = DEFAULT_DEBOUNCE_MS,
        step_ms: int = DEFAULT_STEP_MS,
        force_polling: bool | None = None,
    ) -> None:
        self.paths = list(paths)
        self.directories = watched_directories(paths)
        self._by_path = {str(directory.path): directory for directory in self.directories}
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.force_polling = force_polling

    def is_relevant(self, change: watchfiles.Change, path: str) -> bool:
        """watchfiles filter: entries of a watched directory that can change the config."""
        parent, _, name = path.rpartition(os.sep)
        directory = self._by_path.get(parent)
        # None: the watched directory itself (polling reports it); its replacement is noticed by identity.
        return directory is not None and directory.wants(name)

    async def changes(self, stop: asyncio.Event | None = None) -> AsyncIterator[list[str]]:
        """Yield each debounced batch of relevant changes until `stop` is set.

        Set `stop` rather than cancelling the consuming task: the watch thread sees it within one step,
        while a cancellation waits for the thread's own timeout. When a watched directory is replaced,
        recreated or the OS watch fails, the watch restarts and an empty batch is yielded: the files may
        have changed without an event for them.
        """
        stop = stop or asyncio.Event()
        failures = 0
        seen = route_file_state(self.paths)
        while not stop.is_set():
            identities = self._identities()
            existing = [d.path for d, found in zip(self.directories, identities, strict=True) if found]
            try:
                async for batch in watchfiles.awatch(
                    *existing,
                    watch_filter=self.is_relevant,
                    debounce=self.debounce_ms,
                    step=self.step_ms,
                    stop_event=stop,
                    rust_timeout=IDENTITY_CHECK_MS,
                    yield_on_timeout=True,
                    recursive=False,
                    force_polling=self.force_polling,
                ):
                    if self._identities() != identities:
                        logger.info("a config directory was replaced; watching the new one")
                        break
                    failures = 0
                    state = route_file_state(self.paths)
                    missed = [] if batch else changed_files(seen, state)
                    seen = state
                    if batch or missed:
                        yield sorted({Path(path).name for _, path in batch}) or missed
            except (OSError, RuntimeError) as exc:  # the OS watch failed: retry, never give up on it
                failures += 1
                logger.log(
                    logging.WARNING if failures == 1 else logging.DEBUG,
                    "config watcher failed (%s); retrying every %.0fs. SIGHUP still reloads; on a filesystem "
                    "without change notifications set WATCHFILES_FORCE_POLLING=1",
                    exc,
                    RESTART_DELAY,
                )
                await _sleep_or_stop(stop, RESTART_DELAY)
            if not stop.is_set():
                seen = route_file_state(self.paths)
                yield []

    def _identities(self) -> tuple[tuple[int, int] | None, ...]:
        """(device, inode) of each watched directory, None when it does not exist right now."""
        out: list[tuple[int, int] | None] = []
        for directory in self.directories:
            try:
                stat = directory.path.stat()
            except OSError:
                out.append(None)
            else:
                out.append((stat.st_dev, stat.st_ino))
        return tuple(out)


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
