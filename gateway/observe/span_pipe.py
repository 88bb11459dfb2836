"""The gateway's side of span export: a bounded queue of traced requests, written in batches by a thread to
the exporter process (`observe/span_export.py`) over a pipe.

Semantics are the SDK batch processor's, with its settings (`OTEL_BSP_SCHEDULE_DELAY`,
`OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`), counted in traced requests (a request's
spans, its own and its attempts', travel as one item): a batch leaves when it is full or when the delay has
passed; a request that finds the queue full is dropped, its spans counted, and the count is logged at most
once a minute. What differs is where the work is: here a request is one `deque.append` of a tuple and
half a microsecond of JSON in the writer thread; the SDK's span objects and the protobuf encoding, about 150
us of CPU per traced request, are the exporter process's. An exporter process that exits is started again
(at most once per `RESTART_INTERVAL`), and its batches dropped meanwhile are counted too.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.observe.span_wire import frame, spans_of

logger = logging.getLogger("gateway.tracing")

RESTART_INTERVAL = 10.0  # seconds between starts of a failing exporter process
DROP_LOG_INTERVAL = 60.0
# How long shutdown waits for the exporter process to send what it was given (its exporter's own timeout,
# OTEL_EXPORTER_OTLP_TIMEOUT, is 10 s by default).
EXIT_TIMEOUT = 15.0
EXPORTER_MODULE = "gateway.observe.span_export"


def batch_settings(environ: Mapping[str, str]) -> tuple[float, int, int]:
    """(delay in seconds, queue size, batch size) from OTEL_BSP_*, with the SDK's defaults."""

    def positive(name: str, default: int) -> int:
        try:
            value = int(environ.get(name, default))
        except ValueError:
            logger.warning("%s is not a whole number: using %d", name, default)
            return default
        return value if value > 0 else default

    queue = positive("OTEL_BSP_MAX_QUEUE_SIZE", 2048)
    batch = min(positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512), queue)
    return positive("OTEL_BSP_SCHEDULE_DELAY", 5000) / 1000, queue, batch


class SpanPipe:
    """Traced requests (tuples of `span_wire.TracedRequest`'s fields) on their way to the exporter process."""

    def __init__(self, settings: dict[str, Any], environ: Mapping[str, str]) -> None:
        self._delay, self._max_queue, self._batch_size = batch_settings(environ)
        self._settings_frame = frame({**settings, "batch_size": self._batch_size})
        self._queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        # Spans dropped since the start: by add() on the event loop (queue full), and by the writer thread
        # (exporter down); one counter per thread, so neither's += can lose the other's.
        self._dropped_full = 0
        self._dropped_unsent = 0
        self._dropped_logged = 0
        self._drop_logged_at = 0.0
        self._started_at = 0.0
        self._process: subprocess.Popen[bytes] | None = None
        self._start_process()
        self._thread = threading.Thread(target=self._run, name="gateway-span-pipe", daemon=True)
        self._thread.start()

    def add(self, request: tuple[Any, ...]) -> None:
        """Queue one traced request (from the event loop; never blocks)."""
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._dropped_full += spans_of(request)
            return
        queue.append(request)
        if len(queue) == self._batch_size:
            self._wake.set()

    def shutdown(self) -> None:
        """Send what is queued, close the pipe and wait for the exporter process to export it (blocking:
        call it off the event loop)."""
        self._stopping = True
        self._wake.set()
        self._thread.join()
        process = self._process
        if process is None:
            return
        self._close_pipe(process)
        try:
            process.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            logger.warning("the span exporter did not finish within %.0f s: stopped", EXIT_TIMEOUT)
            process.kill()
            process.wait()

    @property
    def dropped(self) -> int:
        return self._dropped_full + self._dropped_unsent

    @property
    def exporter_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            self._send_queued()
            self._log_drops()
            if self._stopping:
                return

    def _send_queued(self) -> None:
        queue = self._queue
        while queue:
            popleft = queue.popleft  # one at a time: the event loop may append meanwhile
            batch = [popleft() for _ in range(min(len(queue), self._batch_size))]
            data, written = self._framed(batch)
            if written and not self._write(data):
                self._dropped_unsent += sum(spans_of(request) for request in written)

    def _framed(self, batch: list[tuple[Any, ...]]) -> tuple[bytes, list[tuple[Any, ...]]]:
        """The batch as a frame, and the requests it holds. A request JSON cannot carry (a value of a
        type the request path never gives) is dropped and its spans counted alone, not with its batch, and
        never stops this thread."""
        try:
            return frame(batch), batch
        except (TypeError, ValueError):
            pass
        writable = []
        unwritable = 0
        for request in batch:
            try:
                frame(request)
            except (TypeError, ValueError):
                unwritable += spans_of(request)
                continue
            writable.append(request)
        self._dropped_unsent += unwritable
        logger.warning("%d spans could not be written to the exporter: dropped", unwritable)
        return frame(writable), writable

    def _write(self, data: bytes) -> bool:
        process = self._process
        if process is None or process.poll() is not None:
            process = self._restart(process)
            if process is None:
                return False
        stdin = process.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def _restart(self, process: subprocess.Popen[bytes] | None) -> subprocess.Popen[bytes] | None:
        if process is not None and process.returncode is not None:
            self._close_pipe(process)
            logger.warning("the span exporter exited with code %s", process.returncode)
            self._process = None
        if time.monotonic() - self._started_at < RESTART_INTERVAL:
            return None
        return self._start_process()

    def _start_process(self) -> subprocess.Popen[bytes] | None:
        self._started_at = time.monotonic()
        environ = dict(os.environ)
        # The exporter imports the gateway package from where this process found it (a checkout too).
        package_root = str(Path(__file__).resolve().parents[2])
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environ.get("PYTHONPATH")]))
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", EXPORTER_MODULE], stdin=subprocess.PIPE, env=environ, close_fds=True
            )
        except OSError as error:
            logger.warning("the span exporter could not be started: %s", error)
            return None
        assert process.stdin is not None
        try:
            process.stdin.write(self._settings_frame)
            process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it exited at once: the next write finds out
        self._process = process
        return process

    def _close_pipe(self, process: subprocess.Popen[bytes]) -> None:
        if process.stdin is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                process.stdin.close()

    def _log_drops(self) -> None:
        dropped = self.dropped
        unlogged = dropped - self._dropped_logged
        if not unlogged:
            return
        now = time.monotonic()
        if not self._stopping and now - self._drop_logged_at < DROP_LOG_INTERVAL:
            return
        logger.warning(
            "%d spans dropped (%d since the start): the export queue was full or its exporter down",
            unlogged,
            dropped,
        )
        self._dropped_logged, self._drop_logged_at = dropped, now
