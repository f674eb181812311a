"""Limit definitions, as :mod:`kernelflow.concurrency` reads them: they live in the store.

The definition files are part of the store (:mod:`kernelflow.store.limit_files`),
whose repair mirrors them into its ``concurrency_limits`` table; this module
keeps the old import path.
"""

from __future__ import annotations

from kernelflow.store.limit_files import (
    LimitDefinition,
    check_decay,
    check_limit,
    check_name,
    delete_definition,
    find_definition,
    limit_dir,
    limits_root,
    list_definitions,
    read_definition,
    write_definition,
)

__all__ = [
    "LimitDefinition",
    "check_decay",
    "check_limit",
    "check_name",
    "delete_definition",
    "find_definition",
    "limit_dir",
    "limits_root",
    "list_definitions",
    "read_definition",
    "write_definition",
]
