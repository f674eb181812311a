"""Helpers for testing code that uses kernelflow.

``temporary_store()`` points the process (and the subprocesses it starts) at
a fresh, empty store and removes it afterwards::

    from kernelflow.testing import temporary_store

    def test_pipeline():
        with temporary_store() as store:
            pipeline()
            assert len(store.sql("SELECT * FROM flow_runs")) == 1

With pytest, the same is the ``temporary_store`` fixture (installed with
kernelflow as a pytest plugin).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kernelflow import settings

__all__ = ["TemporaryStore", "temporary_store"]


class TemporaryStore:
    """A store in a temporary directory; see :func:`temporary_store`."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.paths = settings.StorePaths(home)

    def sql(self, query: str, params: Any = None) -> Any:
        """Run a query on this store (after folding in pending events)."""
        from kernelflow.store.queries import sql

        return sql(query, params)

    def __repr__(self) -> str:
        return f"TemporaryStore({str(self.home)!r})"


@contextmanager
def temporary_store() -> Iterator[TemporaryStore]:
    """Use a fresh store for the duration of the ``with`` block."""
    home = Path(tempfile.mkdtemp(prefix="kernelflow-test-"))
    previous_env = settings.current().raw("home")
    previous = settings.use_home(home)
    os.environ["KERNELFLOW_HOME"] = str(home)
    try:
        yield TemporaryStore(home)
    finally:
        from kernelflow.store import journal

        journal.forget(home / "journal")
        settings.use_home(previous)
        if previous_env is None:
            os.environ.pop("KERNELFLOW_HOME", None)
        else:
            os.environ["KERNELFLOW_HOME"] = previous_env
        shutil.rmtree(home, ignore_errors=True)
