"""The JupyterLab panel's run list: flow runs with their kind, notebook and deployment, one page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernelflow.store.queries.bounds import _newest
from kernelflow.store.queries.reading import FRAME, ROWS, Shape, _has_table, _read, _Reader

if TYPE_CHECKING:
    import pandas


# What the run list adds to each row of flow_runs. A session run (tagged 'notebook') is a
# kernel's notebook session; a deployment run is a top-level run with a deployment; only a
# run whose parent is not a session is a subflow (a flow called at the top level of a
# notebook cell has the session as parent, yet the user called it as a flow).
_RUN_KIND = """
    CASE
        WHEN coalesce(list_contains(r.tags, 'notebook'), FALSE) THEN 'session'
        WHEN r.deployment_id IS NOT NULL AND r.parent_flow_run_id IS NULL THEN 'deployment'
        WHEN r.parent_flow_run_id IS NOT NULL
             AND NOT coalesce(list_contains(p.tags, 'notebook'), FALSE) THEN 'subflow'
        ELSE 'flow'
    END"""
# A session's notebook: its flow name when that is a notebook path (Jupyter told the kernel
# its path), else the notebook of the deployment whose run started the kernel.
_RUN_PATH = """
    CASE
        WHEN coalesce(list_contains(r.tags, 'notebook'), FALSE) THEN
            CASE WHEN r.flow_name LIKE '%.ipynb' THEN r.flow_name ELSE pd.notebook END
        WHEN r.deployment_id IS NOT NULL AND r.parent_flow_run_id IS NULL THEN d.notebook
        ELSE NULL
    END"""


def list_run_summaries(
    flow: str | None = None,
    state: str | None = None,
    deployment: str | None = None,
    since: float | None = None,
    until: float | None = None,
    run_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
    fold_skipped: bool = True,
) -> pandas.DataFrame:
    """Flow runs as the JupyterLab panel lists them, newest first, one page.

    Each row of ``flow_runs`` gains ``kind`` (``flow``, ``subflow``,
    ``session`` or ``deployment``), ``path`` (the notebook, or null),
    ``deployment`` (the deployment's name, or null), ``folded`` (how many
    runs the row stands for) and ``folded_since`` (when the oldest of them
    was created). With ``fold_skipped``, Skipped runs of one deployment with
    no other run of it between them are one row: the newest of those the
    filters keep.

    Parameters
    ----------
    flow
        Only runs of the flow with this name.
    state
        Only runs in this state, by name or type, case-insensitive.
    deployment
        Only runs of the deployment with this name.
    since, until
        Only runs created at or after ``since`` and before ``until`` (epoch seconds).
    run_id
        Only the run with this exact id.
    limit, offset
        The page, counted in rows after folding.
    fold_skipped
        Fold consecutive Skipped runs of a deployment into one row.

    Returns
    -------
    pandas.DataFrame
    """
    with _read() as reader:
        return _run_summaries(
            reader,
            flow,
            state,
            deployment,
            since,
            until,
            run_id,
            limit,
            offset,
            fold_skipped,
            FRAME,
        )


def run_summary_rows(
    flow: str | None = None,
    state: str | None = None,
    deployment: str | None = None,
    since: float | None = None,
    until: float | None = None,
    run_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
    fold_skipped: bool = True,
) -> list[dict[str, Any]]:
    """:func:`list_run_summaries` as rows (the REST API's page of runs)."""
    with _read() as reader:
        return _run_summaries(
            reader, flow, state, deployment, since, until, run_id, limit, offset, fold_skipped, ROWS
        )


def _run_summaries(
    reader: _Reader,
    flow: str | None,
    state: str | None,
    deployment: str | None,
    since: float | None,
    until: float | None,
    run_id: str | None,
    limit: int,
    offset: int,
    fold_skipped: bool,
    shape: Shape,
) -> Any:
    has_deployments = _has_table(reader, "deployments")
    where: list[str] = ["TRUE"]
    params: list[Any] = []
    if flow is not None:
        where.append("r.flow_name = ?")
        params.append(flow)
    if state is not None:
        where.append("(lower(r.state_name) = lower(?) OR lower(r.state_type) = lower(?))")
        params += [state, state]
    if deployment is not None:
        where.append("d.name = ?" if has_deployments else "FALSE")
        params += [deployment] if has_deployments else []
    if since is not None:
        where.append("r.created >= to_timestamp(?)")
        params.append(float(since))
    if until is not None:
        where.append("r.created < to_timestamp(?)")
        params.append(float(until))
    if run_id is not None:
        where.append("r.id = ?")
        params.append(run_id)
    if has_deployments:
        joins_for_filters = "LEFT JOIN deployments d ON d.id = r.deployment_id"
        joins = (
            "LEFT JOIN deployments d ON d.id = r.deployment_id "
            "LEFT JOIN deployments pd ON pd.id = p.deployment_id"
        )
    else:  # a store older than deployments: the same columns, all null
        joins_for_filters = ""  # the deployment filter is FALSE: no table to join
        joins = (
            "LEFT JOIN (SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS name, "
            "NULL::VARCHAR AS notebook WHERE FALSE) d ON d.id = r.deployment_id "
            "LEFT JOIN (SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS notebook "
            "WHERE FALSE) pd ON pd.id = p.deployment_id"
        )
    # Gaps and islands over each deployment's whole history (not only what the
    # filters keep): in its runs, oldest first, consecutive Skipped runs share
    # (position among all its runs - position among its Skipped runs). Only
    # Skipped runs fold, so only they are counted per island; every other run is
    # its own row, and the page is cut (ORDER BY ... LIMIT) without a window over
    # every run of the store.
    history = """
        SELECT id AS run, 'skipped:' || deployment_id || ':' || (
            row_number() OVER (PARTITION BY deployment_id ORDER BY created NULLS FIRST, id)
            - row_number() OVER (
                PARTITION BY deployment_id, skipped ORDER BY created NULLS FIRST, id)
        ) AS island, skipped
        FROM (
            SELECT *, coalesce(state_name = 'Skipped', FALSE) AS skipped FROM flow_runs
            WHERE deployment_id IS NOT NULL AND parent_flow_run_id IS NULL
              -- only deployments that skipped a run have islands to fold
              AND deployment_id IN (
                  SELECT deployment_id FROM flow_runs WHERE state_name = 'Skipped')
        )
    """
    if fold_skipped:
        # Most stores never skipped a run: then there is nothing to fold, and the
        # newest page can be looked for among recent runs first (see _newest).
        (skipped,) = reader.one("SELECT count(*) FROM flow_runs WHERE state_name = 'Skipped'")
        fold_skipped = skipped > 0
    if not fold_skipped:
        history = "SELECT NULL::VARCHAR AS run, NULL::VARCHAR AS island, FALSE AS skipped"
    # The page is cut on narrow columns first (the filters, the folding of Skipped
    # runs); only then are its rows read whole and joined with their parent and
    # deployment, so a store of 100k runs costs one narrow scan, not a join of all.
    filters = " AND ".join(where)
    query = f"""
        WITH history AS ({history}),
        kept AS (
            SELECT r.id, r.created, r.parent_flow_run_id,
                   CASE WHEN h.skipped THEN h.island END AS island
            FROM flow_runs r
            LEFT JOIN history h ON h.run = r.id
            {joins_for_filters if deployment is not None else ""}
            WHERE {filters}{{recent}}
        ),
        islands AS (
            SELECT island, count(*) AS folded, min(created) AS folded_since,
                   arg_min(id, (created IS NULL, -epoch_us(created), id)) AS shown
            FROM kept WHERE island IS NOT NULL GROUP BY island
        )
        SELECT k.id, k.created, k.parent_flow_run_id, coalesce(i.folded, 1) AS folded,
               CASE WHEN i.island IS NULL THEN k.created ELSE i.folded_since END AS folded_since
        FROM kept k LEFT JOIN islands i ON i.island = k.island
        WHERE k.island IS NULL OR k.id = i.shown
        ORDER BY k.created DESC NULLS LAST, k.id
    """
    found = reader.found.get(run_id) if run_id is not None else None
    if found is not None and where == ["TRUE", "r.id = ?"] and not fold_skipped:
        # A run already read on this connection (the REST run detail): its page is itself.
        created, parent = found
        page = [(run_id, created, parent, 1, created)]
    elif fold_skipped or run_id is not None:
        # Islands may reach back past any recent stretch, and one run may be old: one query.
        page = reader.execute(
            query.replace("{recent}", "") + " LIMIT ? OFFSET ?", [*params, int(limit), int(offset)]
        ).fetchall()
    else:
        page = _newest(reader, query, params, limit, offset, column="r.created")
    if not page:
        return reader.fetch(
            f"SELECT r.*, {_RUN_KIND} AS kind, {_RUN_PATH} AS path, d.name AS deployment, "
            "1 AS folded, r.created AS folded_since FROM flow_runs r "
            f"LEFT JOIN flow_runs p ON p.id = r.parent_flow_run_id {joins} WHERE FALSE",
            None,
            shape,
        )
    ids = [run_id for run_id, *_ in page]
    # Only the page's parents are joined (not a hash table of every flow run).
    parents = sorted({parent for _, _, parent, *_ in page if parent is not None})
    details: dict[str, Any] = {"ids": ids}
    parent_rows = (
        "SELECT NULL::VARCHAR AS id, NULL::VARCHAR[] AS tags, NULL::VARCHAR AS deployment_id"
    )
    if parents:
        parent_rows = (
            "SELECT id, tags, deployment_id FROM flow_runs WHERE list_contains($parents, id)"
        )
        details["parents"] = parents
    bound = ""
    if all(created is not None for _, created, *_ in page):
        bound = " AND r.created >= $low AND r.created <= $high"
        details["low"] = min(created for _, created, *_ in page)
        details["high"] = max(created for _, created, *_ in page)
    folded = "VALUES " + ", ".join(
        f"($id{i}, $n{i}::BIGINT, $since{i}::TIMESTAMPTZ, {i})" for i in range(len(page))
    )
    for i, (run_id, _, _, count, since) in enumerate(page):
        details.update({f"id{i}": run_id, f"n{i}": count, f"since{i}": since})
    return reader.fetch(
        f"""
        SELECT r.*, {_RUN_KIND} AS kind, {_RUN_PATH} AS path, d.name AS deployment,
               f.folded, f.folded_since
        FROM flow_runs r
        JOIN ({folded}) f(id, folded, folded_since, place) ON f.id = r.id
        LEFT JOIN ({parent_rows}) p ON p.id = r.parent_flow_run_id
        {joins}
        WHERE list_contains($ids, r.id){bound}
        ORDER BY f.place
        """,
        details,
        shape,
    )
