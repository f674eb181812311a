"""Which notebook cell is running: the number (``In [N]``) IPython gives it.

Its own module so that the package ``__init__`` (which installs the views),
the tracker (:mod:`kernelflow.widgets._live`) and the kernel's magics all read
it from one place, without a submodule importing its own package.
"""

from __future__ import annotations

from typing import Any

__all__ = ["cell_number"]


def cell_number(shell: Any, info: Any = None) -> int | None:
    """The number (``In [N]``) of the cell starting now, from a ``pre_run_cell`` event.

    IPython counts the cell before the event fires when it stores history, so
    the shell's ``execution_count`` is then already the next cell's number.
    """
    count = getattr(shell, "execution_count", None)
    if count is None:
        return None
    stored = getattr(info, "store_history", True) if info is not None else True
    return count - 1 if stored and count > 1 else count
