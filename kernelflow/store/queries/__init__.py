"""Reading the store: SQL and the few questions every tool asks, as DataFrames or rows.

Each call first folds a small backlog of journal events into the database,
then reads it read-only (:mod:`.reading`), attached to the process's one
DuckDB instance (:mod:`.attached`). The tables and their columns are
documented in ``docs/schema.md``.

The Python API answers with pandas DataFrames; the CLI, the REST payloads and
the widgets use the ``*_rows`` twins (lists of dicts, same SQL), so they never
import pandas, and :func:`session` to ask a page's questions on one
connection. The questions are written for a store of millions of task runs:
pages are cut in SQL on narrow columns, and a flow run's task runs and log
lines are bounded by the run's own time span (:mod:`.bounds`), so DuckDB's
zone maps skip the rest of the table (see
``docs/decisions/query-latency-at-scale.md``).

:func:`sql` is the one way users' SQL reaches the store (:mod:`.sandbox`).

One module per subject: :mod:`.flow_runs`, :mod:`.task_runs`, :mod:`.logs`,
:mod:`.artifacts` (with webhooks and the cache table), :mod:`.summaries` (the
panel's run list) and :mod:`.deployments`.
"""

from __future__ import annotations

from kernelflow.store.queries.artifacts import (
    artifact_rows,
    artifacts_of,
    cache_entries,
    latest_artifact,
    webhook_rows,
    webhooks_of,
)
from kernelflow.store.queries.deployments import (
    deployment_definition,
    deployment_definitions,
    last_deployment_run_rows,
    last_deployment_runs,
)
from kernelflow.store.queries.flow_runs import (
    HistoryPage,
    find_flow_run,
    flow_names,
    get_flow_run,
    history_page,
    list_flow_runs,
    recent_flow_runs,
    subflow_rows,
    subflows_of,
)
from kernelflow.store.queries.logs import LogPage, log_page, log_page_rows, log_rows, logs_of
from kernelflow.store.queries.reading import (
    FRAME,
    INLINE_FOLD_BYTES,
    ROWS,
    inline_fold_bytes,
    lag_line,
    session,
    watch_lag,
)
from kernelflow.store.queries.sandbox import sql
from kernelflow.store.queries.summaries import list_run_summaries, run_summary_rows
from kernelflow.store.queries.task_runs import (
    task_run_rows,
    task_runs_of,
    task_state_count_rows,
    task_state_counts,
)

__all__ = [
    "FRAME",
    "INLINE_FOLD_BYTES",
    "ROWS",
    "HistoryPage",
    "LogPage",
    "artifact_rows",
    "artifacts_of",
    "cache_entries",
    "deployment_definition",
    "deployment_definitions",
    "find_flow_run",
    "flow_names",
    "get_flow_run",
    "history_page",
    "inline_fold_bytes",
    "lag_line",
    "last_deployment_run_rows",
    "last_deployment_runs",
    "latest_artifact",
    "list_flow_runs",
    "list_run_summaries",
    "log_page",
    "log_page_rows",
    "log_rows",
    "logs_of",
    "recent_flow_runs",
    "run_summary_rows",
    "session",
    "sql",
    "subflow_rows",
    "subflows_of",
    "task_run_rows",
    "task_runs_of",
    "task_state_count_rows",
    "task_state_counts",
    "watch_lag",
    "webhook_rows",
    "webhooks_of",
]
