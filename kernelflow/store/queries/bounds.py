"""Bounding reads in time, so DuckDB skips the row groups a question cannot need.

A flow run's task runs and log lines are bounded by the run's own time span
(:class:`_Span`), and a page of the newest runs is looked for among recent
runs first (:func:`_newest`); see ``docs/decisions/query-latency-at-scale.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from kernelflow.store.queries.reading import _Reader, _Span
from kernelflow.store.schema import TERMINAL_STATE_TYPES

# A run's task runs and log lines lie inside its own time span, and the store holds rows
# in about the order they were created, so bounding ``created`` / ``timestamp`` by the
# run's span lets DuckDB skip every row group outside it (zone maps) instead of reading
# millions of ids. The margin covers clocks of other hosts (Dask workers) and events
# folded late; a run without a known start or end is not bounded on that side.
_MARGIN = "INTERVAL 1 DAY"
_MARGIN_DELTA = dt.timedelta(days=1)
_TERMINAL = ", ".join(f"'{kind}'" for kind in TERMINAL_STATE_TYPES)


def _span(reader: _Reader, flow_run_ids: Sequence[str]) -> _Span:
    """The span the task runs (and logs) of these flow runs (and their subflows) lie in."""
    ids = sorted(set(flow_run_ids))
    if not ids:
        return _Span()
    known = reader.spans.get(tuple(ids))
    if known is not None:
        return known
    reader.spans[tuple(ids)] = span = _looked_up_span(reader, ids)
    return span


def _looked_up_span(reader: _Reader, ids: list[str]) -> _Span:
    found, started, low, high = reader.one(
        f"""
        SELECT count(*), count(created), min(created) - {_MARGIN},
            CASE WHEN count(*) = count(end_time) AND bool_and(state_type IN ({_TERMINAL}))
                 THEN max(end_time) + {_MARGIN} END
        FROM flow_runs WHERE list_contains($ids, id)
        """,
        {"ids": ids},
    )
    # A run known only by a task's event (no row, or no creation time yet): no bound.
    if found < len(ids) or started < found:
        return _Span()
    return _Span(low, high)


def _span_of(runs: Sequence[Mapping[str, Any]]) -> _Span:
    """:func:`_span` of flow runs already read (rows with ``created``, ``end_time``...)."""
    if not runs or any(run.get("created") is None for run in runs):
        return _Span()
    low = min(run["created"] for run in runs) - _MARGIN_DELTA
    ended = all(
        run.get("end_time") is not None and run.get("state_type") in TERMINAL_STATE_TYPES
        for run in runs
    )
    high = max(run["end_time"] for run in runs) + _MARGIN_DELTA if ended else None
    return _Span(low, high)


#: Pages of newest runs are looked for among the runs of this last stretch of time first.
_RECENT = dt.timedelta(days=7)


def _newest(
    reader: _Reader,
    query: str,
    params: list[Any],
    limit: int,
    offset: int = 0,
    column: str = "created",
) -> list[tuple]:
    """``query`` (ordered newest first) cut to ``LIMIT limit OFFSET offset``.

    Tried first on the runs created in the last :data:`_RECENT` (``{recent}`` in
    ``query`` becomes that condition), which DuckDB reads from the newest row
    groups only: when that finds a whole page, no older run can belong in it
    (each is older than every run found). Otherwise the whole table is sorted.
    """
    cut = [*params, int(limit), int(offset)]
    since = dt.datetime.now(dt.timezone.utc) - _RECENT
    recent = reader.execute(
        query.replace("{recent}", f" AND {column} >= ?") + " LIMIT ? OFFSET ?",
        [*params, since, *cut[-2:]],
    ).fetchall()
    if len(recent) == limit:
        return recent
    return reader.execute(query.replace("{recent}", "") + " LIMIT ? OFFSET ?", cut).fetchall()
