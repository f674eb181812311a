"""Fixtures for the notebook integration: a real IPython shell and real kernels.

``ip`` is IPython's global test shell with ``%load_ext kernelflow`` done and a
clean namespace. ``kernel_name`` is a kernelspec, written to a temporary
Jupyter data directory, that starts this very Python (``sys.executable``) with
this checkout importable, so the tests work in the probe venv and in the
project's ``.venv`` alike. ``kernel_helpers.LiveKernel`` drives one kernel
cell by cell through nbclient, as a person at a notebook would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kernelspecs import write_kernelspec

REPO = Path(__file__).resolve().parents[2]
KERNEL_NAME = "kernelflow-test"


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


@pytest.fixture
def kernel_name(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running ``sys.executable`` with this checkout on the path."""
    data = tmp_path_factory.mktemp("jupyter")
    write_kernelspec(data, KERNEL_NAME, "kernelflow test")
    monkeypatch.setenv("JUPYTER_PATH", str(data))
    return KERNEL_NAME
