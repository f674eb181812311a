"""Fixtures for the live widgets: a real IPython shell, real kernels.

``shell`` is IPython's global test shell with ``%load_ext kernelflow`` (which
installs the live views) and a clean namespace. ``kernel_name`` is a
kernelspec, in a temporary Jupyter data directory, that starts this very
Python with this checkout importable.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kernelspecs import write_kernelspec as write_spec

REPO = Path(__file__).resolve().parents[2]
KERNEL_NAME = "kernelflow-widgets-test"


@pytest.fixture
def shell() -> Iterator[Any]:
    """IPython's test shell with kernelflow loaded; everything reset afterwards."""
    from IPython.testing import globalipapp

    import kernelflow.widgets as widgets

    globalipapp.start_ipython()
    ip = globalipapp.get_ipython()
    ip.reset(new_session=False)
    ip.run_line_magic("load_ext", "kernelflow")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "kernelflow")
        widgets.set_enabled(None)
        ip.reset(new_session=False)


def write_kernelspec(data: Path) -> str:
    """Write a kernelspec running ``sys.executable`` with this checkout on the path."""
    return write_spec(data, KERNEL_NAME, "kernelflow widgets test")


@pytest.fixture
def kernel_name(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running ``sys.executable`` with this checkout on the path."""
    data = tmp_path_factory.mktemp("jupyter")
    monkeypatch.setenv("JUPYTER_PATH", str(data))
    return write_kernelspec(data)


@pytest.fixture(scope="module")
def module_kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like ``kernel_name`` for a whole module, with the module's own store home.

    Module fixtures start before the per-test store, so this one sets
    ``KERNELFLOW_HOME`` itself: kernels started meanwhile never see ``~/.kernelflow``.
    """
    data = tmp_path_factory.mktemp("jupyter")
    home = tmp_path_factory.mktemp("kernelflow-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(data))
        patch.setenv("KERNELFLOW_HOME", str(home))
        yield write_kernelspec(data)
