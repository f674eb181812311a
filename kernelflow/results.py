"""Content-addressed result files beside the database (the model's name for them).

The files are written and read by the store layer, which the cache index also
uses: :mod:`kernelflow.store.results` (the API and the layout),
:mod:`kernelflow.store.result_files` (files on disk) and
:mod:`kernelflow.store.result_formats` (pickle and Arrow). This module keeps
the documented import path, ``from kernelflow.results import write_result``, and
``kernelflow.results.PANDAS_FORMAT = "table"`` still sets the store's knob.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from kernelflow.store import results as _store_results
from kernelflow.store.results import (
    ResultRecord,
    check_result_name,
    read_result,
    write_result,
)

if TYPE_CHECKING:  # read through __getattr__ below, so a setting made there is seen
    from kernelflow.store.results import PANDAS_FORMAT, TABLE_FORMAT

__all__ = [
    "PANDAS_FORMAT",
    "TABLE_FORMAT",
    "ResultRecord",
    "check_result_name",
    "read_result",
    "write_result",
]

#: The two format knobs live in :mod:`kernelflow.store.results`; reading or setting
#: them here reads or sets them there, as when they were defined in this module.
_KNOBS = frozenset({"PANDAS_FORMAT", "TABLE_FORMAT"})


def __getattr__(name: str) -> Any:
    if name in _KNOBS:
        return getattr(_store_results, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _ResultsModule(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _KNOBS:
            setattr(_store_results, name, value)
        else:
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _ResultsModule
