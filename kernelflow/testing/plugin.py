"""The pytest plugin kernelflow installs: the ``temporary_store`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kernelflow.testing import TemporaryStore
from kernelflow.testing import temporary_store as _temporary_store


@pytest.fixture
def temporary_store() -> Iterator[TemporaryStore]:
    """A fresh kernelflow store for one test."""
    with _temporary_store() as store:
        yield store
