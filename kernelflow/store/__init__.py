"""The store: journals, the DuckDB file, compaction and queries.

This is the only package that imports duckdb. Importing it stays cheap: the
journal writer and :func:`compact` import nothing heavy, and the query
helpers (which need duckdb and pandas) load on first use through the module
``__getattr__``.

Note that ``kernelflow.store.compact`` is the function; the module of the
same name is ``sys.modules["kernelflow.store.compact"]`` (import from it with
``from kernelflow.store.compact import ...``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Bound eagerly so that the name means the function whatever is imported
# first: importing a submodule binds it on its package once, at first load.
from kernelflow.store.compact import CompactReport, compact

# Also the compactor's hook: the first journal this process opens starts it.
from kernelflow.store.compactor import start_background_compaction

if TYPE_CHECKING:
    from kernelflow.store.db import connect
    from kernelflow.store.queries import (
        LogPage,
        artifacts_of,
        cache_entries,
        get_flow_run,
        latest_artifact,
        list_flow_runs,
        log_page,
        logs_of,
        sql,
        subflows_of,
        task_runs_of,
        webhooks_of,
    )

__all__ = [
    "CompactReport",
    "LogPage",
    "artifacts_of",
    "cache_entries",
    "compact",
    "connect",
    "get_flow_run",
    "latest_artifact",
    "list_flow_runs",
    "log_page",
    "logs_of",
    "sql",
    "start_background_compaction",
    "subflows_of",
    "task_runs_of",
    "webhooks_of",
]

_LAZY = {
    "connect": "kernelflow.store.db",
    "artifacts_of": "kernelflow.store.queries",
    "cache_entries": "kernelflow.store.queries",
    "latest_artifact": "kernelflow.store.queries",
    "get_flow_run": "kernelflow.store.queries",
    "list_flow_runs": "kernelflow.store.queries",
    "LogPage": "kernelflow.store.queries",
    "log_page": "kernelflow.store.queries",
    "logs_of": "kernelflow.store.queries",
    "sql": "kernelflow.store.queries",
    "subflows_of": "kernelflow.store.queries",
    "task_runs_of": "kernelflow.store.queries",
    "webhooks_of": "kernelflow.store.queries",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
