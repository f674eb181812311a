"""Questions about flow runs: lists, pages, one run by id prefix, subflows, flow names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernelflow.errors import RunNotFoundError
from kernelflow.store.queries.bounds import _newest, _span_of
from kernelflow.store.queries.reading import FRAME, ROWS, Shape, _read, _Reader

if TYPE_CHECKING:
    import pandas


def _flow_run_filter(
    flow: str | None, state: str | None, deployment: str | None
) -> tuple[str, list[Any]]:
    where, params = ["TRUE"], []
    if flow is not None:
        where.append("flow_name = ?")
        params.append(flow)
    if state is not None:
        where.append("(lower(state_name) = lower(?) OR lower(state_type) = lower(?))")
        params += [state, state]
    if deployment is not None:
        where.append("deployment_id = ?")
        params.append(deployment)
    return " AND ".join(where), params


def list_flow_runs(
    flow: str | None = None,
    state: str | None = None,
    limit: int = 20,
    deployment: str | None = None,
) -> pandas.DataFrame:
    """The most recent flow runs, newest first.

    Parameters
    ----------
    flow
        Only runs of the flow with this name.
    state
        Only runs in this state, by name (``"Cached"``) or type
        (``"completed"``), case-insensitive.
    limit
        At most this many rows.
    deployment
        Only runs of the deployment with this id.

    Returns
    -------
    pandas.DataFrame
        Rows of ``flow_runs``.
    """
    with _read() as reader:
        return _recent_flow_runs(reader, flow, state, limit, deployment, FRAME)


def _recent_flow_runs(
    reader: _Reader,
    flow: str | None,
    state: str | None,
    limit: int,
    deployment: str | None,
    shape: Shape,
) -> Any:
    where, params = _flow_run_filter(flow, state, deployment)
    order = "ORDER BY created DESC NULLS LAST, id"
    if shape == FRAME:
        return reader.fetch(
            f"SELECT * FROM flow_runs WHERE {where} {order} LIMIT ?", [*params, int(limit)], shape
        )
    # The page is cut on two narrow columns, then only its rows are read whole.
    page = _newest(
        reader, f"SELECT id, created FROM flow_runs WHERE {where}{{recent}} {order}", params, limit
    )
    return _whole_rows(reader, page)


def _whole_rows(reader: _Reader, page: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Every column of the flow runs ``page`` names (``(id, created)`` pairs), in its order.

    Bounded by the page's creation times, so DuckDB reads only their row groups.
    """
    if not page:
        return []
    params: dict[str, Any] = {"ids": [run_id for run_id, _ in page]}
    bound = ""
    if all(created is not None for _, created in page):
        bound = " AND created >= $low AND created <= $high"
        params["low"] = min(created for _, created in page)
        params["high"] = max(created for _, created in page)
    rows = reader.fetch(
        f"SELECT * FROM flow_runs WHERE list_contains($ids, id){bound}", params, ROWS
    )
    by_id = {row["id"]: row for row in rows}
    return [by_id[run_id] for run_id, _ in page if run_id in by_id]


def recent_flow_runs(
    flow: str | None = None,
    state: str | None = None,
    limit: int = 20,
    deployment: str | None = None,
) -> list[dict[str, Any]]:
    """:func:`list_flow_runs` as rows, each with ``task_runs``: how many task runs it has.

    The page and the counts are computed in SQL on one connection; the counts
    read only the row groups of the page's time span.

    Returns
    -------
    list of dict
        Rows of ``flow_runs`` plus ``task_runs``, newest first.
    """
    with _read() as reader:
        runs = _recent_flow_runs(reader, flow, state, limit, deployment, ROWS)
        counts = _task_run_counts(reader, runs)
    for run in runs:
        run["task_runs"] = counts.get(run["id"], 0)
    return runs


def _task_run_counts(reader: _Reader, runs: list[dict[str, Any]]) -> dict[str, int]:
    """Flow run id -> how many task runs it has, for flow runs already read."""
    if not runs:
        return {}
    params: dict[str, Any] = {"ids": [run["id"] for run in runs]}
    bound = _span_of(runs).where("created", params)
    rows = reader.execute(
        "SELECT flow_run_id, count(*) FROM task_runs "
        f"WHERE list_contains($ids, flow_run_id){bound} GROUP BY flow_run_id",
        params,
    ).fetchall()
    return {run_id: int(n) for run_id, n in rows}


def get_flow_run(flow_run_id: str) -> pandas.DataFrame:
    """One flow run, by id or by a unique prefix of its id.

    Parameters
    ----------
    flow_run_id
        The run id, or enough of its first characters to match one run.

    Returns
    -------
    pandas.DataFrame
        One row of ``flow_runs``.

    Raises
    ------
    RunNotFoundError
        No flow run matches, or the prefix matches several.
    """
    with _read() as reader:
        found = _find_flow_run(reader, str(flow_run_id), FRAME)
    _check_found(str(flow_run_id), len(found), None if found.empty else found["id"].iloc[0])
    return found.head(1).reset_index(drop=True)


def find_flow_run(flow_run_id: str) -> dict[str, Any]:
    """:func:`get_flow_run` as one row (a dict).

    Raises
    ------
    RunNotFoundError
        No flow run matches, or the prefix matches several.
    """
    with _read() as reader:
        found = _find_flow_run(reader, str(flow_run_id), ROWS)
        _check_found(str(flow_run_id), len(found), found[0]["id"] if found else None)
        # The questions that follow (its task runs, logs...) need its span: it is here.
        reader.spans[(found[0]["id"],)] = _span_of(found[:1])
        reader.found[found[0]["id"]] = (found[0]["created"], found[0]["parent_flow_run_id"])
    return found[0]


def _find_flow_run(reader: _Reader, prefix: str, shape: Shape) -> Any:
    if len(prefix) >= _ID_LENGTH:
        # A whole id, as pasted: equality reads the ids faster than starts_with (2 ms
        # of 6 on 100k runs), and an exact match is the answer whatever it prefixes.
        found = reader.fetch("SELECT * FROM flow_runs WHERE id = ?", [prefix], shape)
        if len(found):
            return found
    return reader.fetch(
        # An exact match first: an id may also be the prefix of another id.
        "SELECT * FROM flow_runs WHERE starts_with(id, ?) ORDER BY id = ? DESC, id LIMIT 2",
        [prefix, prefix],
        shape,
    )


#: The length of a run id (a UUID's text); shorter text can only be a prefix.
_ID_LENGTH = 36


def _check_found(prefix: str, found: int, first_id: str | None) -> None:
    if found == 0:
        raise RunNotFoundError(
            f"No flow run has an id starting with {prefix!r}; list recent runs with "
            "'kernelflow runs ls'."
        )
    if found > 1 and first_id != prefix:
        raise RunNotFoundError(
            f"Several flow runs have ids starting with {prefix!r}; give more characters "
            "(see 'kernelflow runs ls')."
        )


def subflows_of(flow_run_id: str) -> pandas.DataFrame:
    """The flow runs a flow run called (its subflows), in the order they were created.

    Parameters
    ----------
    flow_run_id
        The parent flow run's id.

    Returns
    -------
    pandas.DataFrame
        Rows of ``flow_runs``.
    """
    with _read() as reader:
        return _subflows(reader, flow_run_id, FRAME)


def subflow_rows(flow_run_id: str) -> list[dict[str, Any]]:
    """:func:`subflows_of` as rows."""
    with _read() as reader:
        return _subflows(reader, flow_run_id, ROWS)


def _subflows(reader: _Reader, flow_run_id: str, shape: Shape) -> Any:
    found = reader.fetch(
        "SELECT * FROM flow_runs WHERE parent_flow_run_id = ? ORDER BY created NULLS LAST, id",
        [flow_run_id],
        shape,
    )
    if shape == ROWS:
        reader.has_sessions[flow_run_id] = any("notebook" in (c["tags"] or []) for c in found)
    return found


@dataclass
class HistoryPage:
    """One page of :func:`history_page`.

    Attributes
    ----------
    runs
        Rows of ``flow_runs`` (the columns the history shows) with
        ``task_runs``, newest first.
    total
        How many flow runs match the filters in all.
    """

    runs: list[dict[str, Any]]
    total: int


def history_page(
    flow: str | None = None,
    state: str | None = None,
    since: Any = None,
    until: Any = None,
    offset: int = 0,
    limit: int = 20,
) -> HistoryPage:
    """A page of flow runs for the run history widget, with the count of all that match.

    Parameters
    ----------
    flow
        Only runs of this flow.
    state
        Only runs in this state, by name or type (case-insensitive).
    since, until
        Only runs created at or after ``since`` and before ``until`` (datetimes).
    offset, limit
        The page.

    Returns
    -------
    HistoryPage
    """
    where, params = _flow_run_filter(flow, state, None)
    if since is not None:
        where += " AND created >= ?"
        params.append(since)
    if until is not None:
        where += " AND created < ?"
        params.append(until)
    with _read() as reader:
        (total,) = reader.one(f"SELECT count(*) FROM flow_runs WHERE {where}", params)
        page = _newest(
            reader,
            f"SELECT id, created FROM flow_runs WHERE {where}{{recent}} "
            "ORDER BY created DESC NULLS LAST, id DESC",
            params,
            limit,
            offset,
        )
        runs = _whole_rows(reader, page)
        counts = _task_run_counts(reader, runs)
    for run in runs:
        run["task_runs"] = counts.get(run["id"], 0)
    return HistoryPage(runs=runs, total=int(total))


def flow_names() -> list[str]:
    """Every flow name in the store, sorted."""
    with _read() as reader:
        found = reader.execute(
            "SELECT DISTINCT flow_name FROM flow_runs WHERE flow_name IS NOT NULL "
            "ORDER BY flow_name"
        ).fetchall()
    return [str(name) for (name,) in found]
