"""Prefect's testing names: ``kernelflow_test_harness`` (``prefect_test_harness``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kernelflow.testing import TemporaryStore, temporary_store

__all__ = ["kernelflow_test_harness", "prefect_test_harness"]


@contextmanager
def kernelflow_test_harness() -> Iterator[TemporaryStore]:
    """Run the enclosed code against a fresh temporary store (no server needed)."""
    with temporary_store() as store:
        yield store


#: The name Prefect users already have in their conftest.py.
prefect_test_harness = kernelflow_test_harness
