"""Fixtures for the notebook integration: a real IPython shell and real kernels.

``ip`` is IPython's global test shell with ``%load_ext kernelflow`` done and a
clean namespace. ``kernel_name`` (in the root ``conftest.py``) is a kernelspec
that starts this very Python (``sys.executable``) with this checkout importable.
``kernel_helpers.LiveKernel`` drives one kernel cell by cell through nbclient, as
a person at a notebook would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def ip() -> Iterator[Any]:
    """IPython's test shell with kernelflow loaded; namespace and extension reset after."""
    from IPython.testing import globalipapp

    globalipapp.start_ipython()  # once per process; later calls return None
    shell = globalipapp.get_ipython()
    shell.reset(new_session=False)
    shell.run_line_magic("load_ext", "kernelflow")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "kernelflow")
        shell.reset(new_session=False)
