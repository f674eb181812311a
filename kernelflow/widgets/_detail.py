"""What a live run view shows when a row is opened: a run's logs and error, or a group's runs.

Read from a :class:`~kernelflow.widgets._model.RunModel` (under its lock) by
:meth:`~kernelflow.widgets._model.RunModel.detail` when the user clicks a row,
and for every listed run when a finished view is saved as static HTML (no
kernel is left to ask then).
"""

from __future__ import annotations

from typing import Any

from kernelflow.widgets._snapshot import FAILED_VALUES, LogLine, row_of

__all__ = ["GROUP_DETAIL_ROWS", "LOG_LINES", "row_details", "run_detail"]

#: Runs listed when a grouped row is opened.
GROUP_DETAIL_ROWS = 25
#: Log lines kept in memory per listed run (the store keeps them all).
LOG_LINES = 200


def run_detail(model: Any, selected: str) -> dict | None:
    """What opening ``selected`` shows (a run id, or ``group:<task name>``); None if unknown.

    ``model`` is a :class:`~kernelflow.widgets._model.RunModel` (not imported: it
    imports this module); call with its lock held, its inbox folded.
    """
    if selected.startswith("group:"):
        name = selected[len("group:") :]
        # Worth opening first: runs that failed, retried or have not finished.
        failed = [
            r
            for r in model.rows.values()
            if r.group == name and (r.retry_errors or not (r.final and r.state_type == "COMPLETED"))
        ]
        failed.sort(key=lambda r: (r.state_type not in FAILED_VALUES, not r.final))
        seen = {r.id for r in failed}
        recent = [
            model.rows.get(e[0]) or row_of(e)
            for e in reversed(model.recent.get(name, ()))
            if e[0] not in seen
        ]
        picked = (failed + recent)[:GROUP_DETAIL_ROWS]
        total = sum(v for k, v in model.groups.get(name, {}).items() if not k.startswith("_"))
        return {
            "kind": "group",
            "name": name,
            "total": total,
            "rows": [r.as_dict(model.retry_at.get(r.id)) for r in picked],
        }
    row = model.rows.get(selected)
    if row is None:
        row = next(
            (row_of(e) for es in model.recent.values() for e in es if e[0] == selected), None
        )
    if row is None:
        return None
    kept = model.logs.get(selected)
    if kept is None:  # a run the view does not list: its lines still kept
        lines = [
            LogLine(r.created, r.levelname, record=r)
            for r in model.log_records
            if r.run_id == selected
        ][-LOG_LINES:]
    else:
        lines = list(kept)
    return {
        "kind": "run",
        "row": row.as_dict(model.retry_at.get(row.id)),
        "logs": lines,
        "error": row.error,
        "retry_errors": list(row.retry_errors or ()),
    }


def row_details(model: Any, rows: list[dict]) -> dict[str, dict]:
    """The details of the listed ``rows`` that have any (error, failed tries, logs), by id."""
    found = {}
    for row in rows:
        detail = model.detail(row["id"])
        if detail and (detail["error"] or detail["retry_errors"] or detail["logs"]):
            found[row["id"]] = detail
    return found
