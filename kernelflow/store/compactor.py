"""Background, detached and at-exit compaction: folding without slowing the work.

A process that records runs starts :func:`start_background_compaction` with
its first journal: a daemon thread that, every ``KERNELFLOW_COMPACT_SECONDS``
while this process's journal grows, folds the store
(:func:`kernelflow.store.compact.compact`).

A fold is CPU work (parsing JSON, DuckDB statements) and would compete with
the flow for the GIL and the cores. So by default (``KERNELFLOW_COMPACT_BACKGROUND=auto``)
the thread folds a backlog larger than :data:`DETACH_ABOVE` bytes in a child
process (:func:`start_detached_compaction`) and waits for it, which holds no
GIL; a small backlog is folded in the thread, whose batches then end with a
pause (:data:`PAUSE_SECONDS`) so the flow's thread gets the interpreter back.
``inline`` always folds in the thread (with the pauses); ``bench/bench_compaction.py``
measures both against folding off.

At exit (``KERNELFLOW_COMPACT_AT_EXIT``): ``detach`` (default) starts the
same child and does not wait, ``inline`` folds before exiting, ``off`` leaves
the events in the journal for the next reader.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from kernelflow import settings
from kernelflow.errors import ConfigurationError
from kernelflow.settings import StorePaths
from kernelflow.store.compact import FoldStopped, call_when_duckdb_loads, compact, fold_pause
from kernelflow.store.journal import call_when_opened, current_journal
from kernelflow.store.journals import pending_bytes

__all__ = [
    "DETACH_ABOVE",
    "PAUSE_SECONDS",
    "background",
    "compact_quietly",
    "register_exit_hook_before_duckdb",
    "start_background_compaction",
    "start_detached_compaction",
]

logger = logging.getLogger("kernelflow.store")

#: In ``auto`` mode, a backlog above this many bytes is folded in a child process.
DETACH_ABOVE = 1 << 20
#: Pause after each batch of an in-thread background fold: the flow's thread runs meanwhile.
PAUSE_SECONDS = 0.005
#: At exit, the longest wait for the background thread's fold to stop (it stops before
#: its next batch: well under a second on a quiet machine).
EXIT_WAIT_SECONDS = 30.0


class _Compactor(threading.Thread):
    """A daemon thread folding this process's journal into the store every few seconds."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="kernelflow-compactor", daemon=True)
        self.interval = interval
        self.pid = os.getpid()
        self._stopping = threading.Event()
        self._child: subprocess.Popen | None = None

    def stop(self, timeout: float | None = None) -> None:
        """Stop; wait up to ``timeout`` seconds.

        A fold in progress in this thread ends before its next batch, its open
        transaction rolled back (the next fold reads those events again).
        """
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def run(self) -> None:
        fold_pause.seconds = PAUSE_SECONDS
        fold_pause.stop = self._stopping
        compacted: dict[Path, int] = {}  # journal -> its size at our last compaction
        while not self._stopping.wait(self.interval):
            journal = current_journal()
            try:
                size = journal.path.stat().st_size
            except FileNotFoundError:
                continue  # nothing written yet, or the store was removed (a test's temporary one)
            if compacted.get(journal.path) != size and self._fold():
                compacted[journal.path] = size
                _retention_quietly()

    def _fold(self) -> bool:
        """Fold in a child for a large backlog, else here; True when it worked."""
        try:
            mode = settings.current().compact_background
        except ConfigurationError as exc:
            logger.warning("kernelflow: %s", exc)
            mode = "auto"
        paths = settings.paths()
        if mode == "auto" and pending_bytes(paths) > DETACH_ABOVE:
            child = start_detached_compaction(paths)
            if child is not None:
                # Waiting holds no GIL: the flow runs at full speed meanwhile.
                return child.wait() == 0
        return compact_quietly("background")


def _retention_quietly() -> None:
    """The automatic retention policy, if set and due; a failure is logged, never raised."""
    from kernelflow.store.prune import apply_retention

    try:
        report = apply_retention()
    except Exception as exc:  # best effort, as background compaction
        logger.warning("kernelflow: automatic pruning (KERNELFLOW_RETENTION) failed: %s", exc)
        return
    if report is not None and (report.flow_runs or report.task_runs or report.result_files):
        logger.info(
            "kernelflow: pruned %d flow runs, %d task runs and %d result files older than "
            "KERNELFLOW_RETENTION",
            report.flow_runs,
            report.task_runs,
            report.result_files,
        )


_background: _Compactor | None = None
_background_lock = threading.Lock()
_last_warning: str | None = None


def start_background_compaction(interval: float | None = None) -> threading.Thread:
    """Compact every ``interval`` seconds while this process's journal grows.

    Idempotent per process; also registers a compaction at interpreter exit.
    Failures are logged as warnings, never raised.

    Parameters
    ----------
    interval
        Seconds between checks; default ``KERNELFLOW_COMPACT_SECONDS`` (5).

    Returns
    -------
    threading.Thread
        The daemon thread; its ``stop()`` ends it.
    """
    global _background
    with _background_lock:
        if _background is None or _background.pid != os.getpid() or not _background.is_alive():
            if interval is None:
                interval = settings.current().compact_seconds
            _background = _Compactor(interval)
            _background.start()
            _register_exit_hook()
        return _background


def background() -> _Compactor | None:
    """This process's background compactor, if it started one."""
    if _background is not None and _background.pid == os.getpid():
        return _background
    return None


_exit_hook_registered = False


def _register_exit_hook() -> None:
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_compact_at_exit)
        _exit_hook_registered = True


_hook_before_duckdb = False
#: Set when this process's exit compaction has begun: a fold failing from then on
#: (DuckDB interrupts its queries at exit) is expected, and its events wait in the journal.
_exiting = False


def register_exit_hook_before_duckdb() -> None:
    """Run the exit compaction before DuckDB's own exit hooks, which interrupt queries.

    ``import duckdb`` registers atexit hooks that interrupt running queries
    (``INTERRUPT Error: Interrupted!``) and refuse new ones. atexit runs hooks
    last-registered first, so a hook registered after that import runs before
    them: the background fold in progress finishes, and an inline exit fold
    can still use DuckDB.
    """
    global _hook_before_duckdb
    if not _hook_before_duckdb:
        atexit.register(_compact_at_exit)
        _hook_before_duckdb = True


def _compact_at_exit() -> None:
    global _exiting
    if _exiting:
        return  # registered twice (see register_exit_hook_before_duckdb): once is enough
    _exiting = True
    if _background is not None and _background.pid == os.getpid():
        _stop_before_exit(_background)
    journal = current_journal()
    if not journal.events_written:
        return
    try:
        mode = settings.current().compact_at_exit
    except ConfigurationError as exc:  # at exit nobody can act on an exception: say it once
        logger.warning("kernelflow: %s", exc)
        mode = "detach"
    if mode == "inline":
        # Short wait: a foreign program holding the database must not stall
        # the exit; the events stay in the journal for the next compaction.
        compact_quietly("at exit", timeout=2.0)
    elif mode == "detach":
        start_detached_compaction()


def _stop_before_exit(thread: _Compactor) -> None:
    """Stop the background thread; wait while it has the database open (in DuckDB).

    See :func:`kernelflow.store.db.connection_open_in`. A thread waiting for the
    store's lock or for its child fold holds no DuckDB state: the process may end
    under it.
    """
    thread.stop(timeout=0)
    db = sys.modules.get("kernelflow.store.db")
    if db is None:  # never imported here: no connection was ever opened (nor duckdb)
        return
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    while thread.is_alive() and db.connection_open_in(thread) and time.monotonic() < deadline:
        thread.join(0.02)


def start_detached_compaction(paths: StorePaths | None = None) -> subprocess.Popen | None:
    """Fold the store in a separate process (``python -m kernelflow.store.detached``).

    Importing DuckDB and pyarrow costs most of a second and a fold is CPU
    work: a short script should not wait for it at exit, and a recording
    process should not share its interpreter with it. The caller may wait for
    the returned process (a benchmark counts its CPU and memory) or not (it
    runs in its own session and outlives the caller). If it cannot start, the
    events simply wait in the journal for the next fold.

    Parameters
    ----------
    paths
        The store; default the active one.

    Returns
    -------
    subprocess.Popen or None
        The child, or None when it could not be started.
    """
    home = paths.home if paths is not None else settings.home()
    env = dict(os.environ, KERNELFLOW_HOME=str(home))
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "kernelflow.store.detached"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    except OSError as exc:
        logger.debug("kernelflow: could not start a detached compaction: %s", exc)
        return None


def compact_quietly(when: str, timeout: float | None = None) -> bool:
    """Best-effort :func:`~kernelflow.store.compact.compact`: True on success; never raises."""
    global _last_warning
    try:
        compact(timeout=timeout)
    except Exception as exc:  # best effort by design; recorded below
        if isinstance(exc, FoldStopped) or sys.is_finalizing() or (_exiting and when != "at exit"):
            # Stopped, or interrupted because this process is exiting: normal, and nothing
            # is lost (the fold's transaction is rolled back; the next one imports it).
            logger.debug("kernelflow: %s compaction stopped: %s", when, exc)
            return False
        message = f"kernelflow: {when} compaction failed: {exc}"
        # The same failure every few seconds (a CLI holding the file) is logged once.
        logger.log(logging.DEBUG if message == _last_warning else logging.WARNING, message)
        _last_warning = message
        return False
    _last_warning = None
    return True


def _start_with_first_journal() -> None:
    # Looked up when called, so a test can replace start_background_compaction.
    start_background_compaction()


# The writer below calls this when it opens a journal: recording runs is what
# starts background compaction, without the writer importing this module.
call_when_opened(_start_with_first_journal)
call_when_duckdb_loads(register_exit_hook_before_duckdb)
