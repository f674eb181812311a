"""Deployments and claims in the DuckDB store: short transactions under the store's lock.

Exactly-once rests on two insert-only tables with real keys:

* ``deployment_fires`` — one row per (deployment, scheduled time). A fire
  runs only if its row was inserted by the caller (``ON CONFLICT DO
  NOTHING RETURNING``), so two schedulers, or one restarted, never run a
  slot twice. Slots skipped by the catch-up policy are claimed too.
* ``deployment_attempts`` — one row per (flow run, try). A process starts a
  try only after inserting its row: a Crashed run is retried once per try,
  whoever notices it.

Each call opens the database for a few milliseconds (``connect`` takes the
store's lock, so concurrent callers queue) and never while a notebook runs.
Only :mod:`kernelflow.store` imports duckdb; this module only uses the
connection it yields.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from kernelflow import settings
from kernelflow.deployments.models import Deployment
from kernelflow.errors import ConfigurationError, DeploymentNotFoundError

__all__ = [
    "claim_attempt",
    "claim_fire",
    "claim_skipped",
    "delete_deployment",
    "get_deployment",
    "last_slots",
    "load_deployments",
    "orphaned_runs",
    "release_attempt",
    "save_deployment",
    "save_deployments",
    "set_paused",
    "take_over_attempt",
    "unstarted_fires",
]

#: Fire kinds that stand for a schedule slot (the catch-up cursor starts after them).
SLOT_KINDS = ("scheduled", "catchup", "skipped")


def _connect(read_only: bool = False) -> Any:
    from kernelflow.store.db import connect

    return connect(settings.paths(), read_only=read_only)


def claimer() -> str:
    """This process as the store names it (``host--pid--ticks``, as ``flow_runs.process``)."""
    from kernelflow.store.journal import current_journal

    return current_journal().path.stem


# --- deployments ----------------------------------------------------------------------------
def save_deployment(deployment: Deployment, update: bool) -> Deployment:
    """Insert ``deployment``, or replace the one of that name when ``update`` is true.

    Raises
    ------
    ConfigurationError
        The name exists and ``update`` is false.
    """
    return save_deployments([deployment], update)[0]


def save_deployments(deployments: list[Deployment], update: bool) -> list[Deployment]:
    """:func:`save_deployment` for many, in one transaction (all or none)."""
    from kernelflow.runs import new_id

    now = time.time()
    with _connect() as con:
        con.begin()
        try:
            for deployment in deployments:
                row = con.execute(
                    "SELECT id, epoch(created) FROM deployments WHERE name = ?",
                    [deployment.name],
                ).fetchone()
                if row is not None and not update:
                    raise ConfigurationError(
                        f"Deployment {deployment.name!r} already exists; pass --update "
                        "(update=True) to change it, or choose another --name."
                    )
                deployment.id = row[0] if row else new_id()
                deployment.created = row[1] if row else now
                deployment.updated = now
                if row is not None:
                    con.execute("DELETE FROM deployments WHERE id = ?", [deployment.id])
                con.execute(
                    "INSERT INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "to_timestamp(?), to_timestamp(?))",
                    [
                        deployment.id,
                        deployment.name,
                        deployment.notebook,
                        deployment.snapshot,
                        deployment.content_hash,
                        deployment.describe_schedule(),
                        deployment.cron,
                        deployment.interval,
                        deployment.timezone,
                        json.dumps(deployment.parameters),
                        deployment.paused,
                        deployment.tags,
                        json.dumps(deployment.definition()),
                        deployment.created,
                        deployment.updated,
                    ],
                )
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return deployments


def load_deployments() -> list[Deployment]:
    """Every deployment, by name; one that cannot run has its ``problem`` set (never raises)."""
    with _connect(read_only=True) as con:
        rows = con.execute("SELECT definition, id, name FROM deployments ORDER BY name").fetchall()
    return [_from_row(*r) for r in rows]


def _from_row(definition: Any, dep_id: Any, name: Any) -> Deployment:
    """A stored deployment, even from a definition that is not JSON (then with a problem)."""
    try:
        data = json.loads(definition)
    except (TypeError, ValueError):
        data = None
    if not isinstance(data, dict):
        data = {"id": dep_id, "name": name}  # from_definition reports it incomplete
    return Deployment.from_definition(data)


def get_deployment(name: str) -> Deployment:
    """The deployment called ``name``.

    Raises
    ------
    DeploymentNotFoundError
        No deployment has that name.
    """
    with _connect(read_only=True) as con:
        row = con.execute(
            "SELECT definition, id, name FROM deployments WHERE name = ?", [name]
        ).fetchone()
    if row is None:
        raise DeploymentNotFoundError(
            f"No deployment is called {name!r}; list them with 'kernelflow deployment ls'."
        )
    return _from_row(*row)


def set_paused(name: str, paused: bool) -> Deployment:
    """Pause or resume ``name``; a resumed deployment fires from now on, not for the pause."""
    deployment = get_deployment(name)
    deployment.paused = paused
    return save_deployment(deployment, update=True)


def delete_deployment(name: str) -> Deployment:
    """Remove ``name``; its runs and claims stay in the history."""
    deployment = get_deployment(name)
    with _connect() as con:
        con.execute("DELETE FROM deployments WHERE id = ?", [deployment.id])
    return deployment


# --- claims -----------------------------------------------------------------------------------
def claim_fire(
    deployment_id: str,
    scheduled_time: float,
    flow_run_id: str,
    kind: str,
    parameters: dict[str, Any] | None = None,
    start: bool = True,
) -> bool:
    """Claim the fire (deployment, scheduled time); True if this caller got it.

    With ``start``, the first try is claimed in the same transaction: the
    caller runs it now, so no scheduler picks the fire up as unstarted.
    """
    with _connect() as con:
        con.begin()
        try:
            got = con.execute(
                "INSERT INTO deployment_fires VALUES (?, to_timestamp(?), ?, ?, ?, now(), ?) "
                "ON CONFLICT DO NOTHING RETURNING flow_run_id",
                [
                    deployment_id,
                    scheduled_time,
                    flow_run_id,
                    kind,
                    json.dumps(parameters or {}),
                    claimer(),
                ],
            ).fetchall()
            if got and start:
                con.execute(
                    "INSERT INTO deployment_attempts VALUES (?, 1, now(), ?)",
                    [flow_run_id, claimer()],
                )
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return bool(got)


def claim_skipped(deployment_id: str, slots: Iterable[tuple[float, str]]) -> list[float]:
    """Claim missed slots as skipped, in one transaction; return the times this caller got."""
    got: list[float] = []
    slots = list(slots)
    if not slots:
        return got
    with _connect() as con:
        con.begin()
        try:
            for when, run_id in slots:
                if con.execute(
                    "INSERT INTO deployment_fires VALUES (?, to_timestamp(?), ?, 'skipped', "
                    "'{}', now(), ?) ON CONFLICT DO NOTHING RETURNING flow_run_id",
                    [deployment_id, when, run_id, claimer()],
                ).fetchall():
                    got.append(when)
            con.commit()
        except BaseException:
            con.rollback()
            raise
    return got


def claim_attempt(flow_run_id: str, attempt: int) -> bool:
    """Claim try number ``attempt`` of a deployment run; True if this caller got it."""
    with _connect() as con:
        got = con.execute(
            "INSERT INTO deployment_attempts VALUES (?, ?, now(), ?) "
            "ON CONFLICT DO NOTHING RETURNING attempt",
            [flow_run_id, attempt, claimer()],
        ).fetchall()
    return bool(got)


def take_over_attempt(flow_run_id: str, attempt: int, dead_claimer: str) -> bool:
    """Take try ``attempt`` over from ``dead_claimer``, a process that died before starting it.

    Conditional on the claimer, so two schedulers never both take it. True if taken.
    """
    with _connect() as con:
        got = con.execute(
            "UPDATE deployment_attempts SET claimed_by = ?, claimed_at = now() "
            "WHERE flow_run_id = ? AND attempt = ? AND claimed_by = ? RETURNING attempt",
            [claimer(), flow_run_id, attempt, dead_claimer],
        ).fetchall()
    return bool(got)


def release_attempt(flow_run_id: str, attempt: int) -> bool:
    """Give back try ``attempt``, claimed by this process but never started.

    The fire is then unstarted again, and the next scheduler takes it over
    (by the deployment's catch-up policy once it is Late). True if released.
    """
    with _connect() as con:
        got = con.execute(
            "DELETE FROM deployment_attempts WHERE flow_run_id = ? AND attempt = ? "
            "AND claimed_by = ? RETURNING attempt",
            [flow_run_id, attempt, claimer()],
        ).fetchall()
    return bool(got)


def last_slots() -> dict[str, float]:
    """Deployment id -> the newest schedule slot claimed for it (epoch seconds)."""
    with _connect(read_only=True) as con:
        rows = con.execute(
            "SELECT deployment_id, epoch(max(scheduled_time)) FROM deployment_fires "
            "WHERE list_contains(?, kind) GROUP BY deployment_id",
            [list(SLOT_KINDS)],
        ).fetchall()
    return dict(rows)


def unstarted_fires() -> list[dict[str, Any]]:
    """Claimed fires whose first try nobody claimed: the scheduler's queue across processes.

    They come from ``deployment run`` without waiting, ``--after`` triggers
    recorded by other processes, and a scheduler that died between claiming
    a fire and starting it. Each row: ``deployment_id``, ``scheduled_time``,
    ``flow_run_id``, ``kind``, ``parameters``.
    """
    with _connect(read_only=True) as con:
        rows = con.execute(
            """
            SELECT f.deployment_id, epoch(f.scheduled_time), f.flow_run_id, f.kind, f.parameters
            FROM deployment_fires f
            WHERE f.kind <> 'skipped'
              AND NOT EXISTS (SELECT 1 FROM deployment_attempts a
                              WHERE a.flow_run_id = f.flow_run_id)
            ORDER BY f.scheduled_time
            """
        ).fetchall()
    return [
        {
            "deployment_id": r[0],
            "scheduled_time": r[1],
            "flow_run_id": r[2],
            "kind": r[3],
            "parameters": json.loads(r[4] or "{}"),
        }
        for r in rows
    ]


def orphaned_runs() -> list[dict[str, Any]]:
    """Deployment runs with tries left whose process is gone, with the tries claimed so far.

    After a compaction, a run whose process died mid-try is Crashed; one that
    was waiting between tries (AwaitingRetry, Late) keeps its state but its
    process has ended. Also listed, whatever its tries: a run whose last try
    was claimed by a process that died before starting it (``unstarted``; that
    try is taken over with :func:`take_over_attempt`, not claimed anew). Each
    row: ``id``, ``name``, ``deployment_id``, ``state_type``, ``state_name``,
    ``run_count``, ``attempts``, ``scheduled_time``, ``parameters`` and
    ``kind`` (of the fire), ``process`` (that last wrote the run) and ``unstarted``.
    """
    with _connect(read_only=True) as con:
        rows = con.execute(
            """
            SELECT r.id, r.name, r.deployment_id, r.state_type, r.state_name,
                   coalesce(r.run_count, 0), a.attempts, epoch(f.scheduled_time), f.parameters,
                   epoch(r.start_time), f.kind, r.process,
                   r.state_type = 'SCHEDULED' AND coalesce(r.run_count, 0) < a.attempts
            FROM flow_runs r
            JOIN deployment_fires f ON f.flow_run_id = r.id
            JOIN deployments d ON d.id = r.deployment_id
            JOIN (SELECT flow_run_id, max(attempt) AS attempts FROM deployment_attempts
                  GROUP BY flow_run_id) a ON a.flow_run_id = r.id
            WHERE (a.attempts < 1 + coalesce(TRY_CAST(d.definition ->> 'retries' AS INTEGER), 0)
                   AND (r.state_type = 'CRASHED'
                        OR (r.state_type = 'SCHEDULED' AND r.process IN
                            (SELECT process FROM processes WHERE ended IS NOT NULL))))
               OR (r.state_type = 'SCHEDULED' AND coalesce(r.run_count, 0) < a.attempts
                   AND r.process IN (SELECT process FROM processes WHERE ended IS NOT NULL))
            ORDER BY r.id
            """
        ).fetchall()
    keys = (
        "id",
        "name",
        "deployment_id",
        "state_type",
        "state_name",
        "run_count",
        "attempts",
        "scheduled_time",
        "parameters",
        "start_time",
        "kind",
        "process",
        "unstarted",
    )
    found = [dict(zip(keys, r, strict=True)) for r in rows]
    for row in found:
        row["parameters"] = json.loads(row["parameters"] or "{}")
    return found
