"""Deployment rows and exactly-once claims: every statement on the deployment tables.

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
:mod:`kernelflow.deployments.records` turns these rows into
:class:`~kernelflow.deployments.models.Deployment` objects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

from kernelflow import settings
from kernelflow.errors import ConfigurationError

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "SLOT_KINDS",
    "DeploymentRecord",
    "claim_attempt",
    "claim_fire",
    "claim_skipped",
    "claimer",
    "delete_deployment_row",
    "deployment_row",
    "deployment_rows",
    "last_slots",
    "orphaned_runs",
    "recorded_run_name",
    "release_attempt",
    "take_over_attempt",
    "unstarted_fires",
    "write_deployments",
]

#: Fire kinds that stand for a schedule slot (the catch-up cursor starts after them).
SLOT_KINDS = ("scheduled", "catchup", "skipped")


@contextmanager
def _connect(read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    from kernelflow.store.db import connect

    with connect(settings.paths(), read_only=read_only) as con:
        yield con


@contextmanager
def _transaction() -> Iterator[duckdb.DuckDBPyConnection]:
    """A write connection in one transaction: committed on success, else rolled back."""
    with _connect() as con:
        con.begin()
        try:
            yield con
            con.commit()
        except BaseException:
            con.rollback()
            raise


def claimer() -> str:
    """This process as the store names it (``host--pid--ticks``, as ``flow_runs.process``)."""
    from kernelflow.store.journal import current_journal

    return current_journal().path.stem


class DeploymentRecord(Protocol):
    """What :func:`write_deployments` reads from a deployment, and sets on it.

    :class:`kernelflow.deployments.models.Deployment` is one; the store, below
    the deployments package, names only what it uses.
    """

    id: str
    name: str
    notebook: str
    snapshot: str
    content_hash: str
    cron: str | None
    interval: float | None
    timezone: str
    parameters: dict[str, Any]
    paused: bool
    tags: list[str]
    created: float
    updated: float

    def describe_schedule(self) -> str:
        """The schedule in words, as the deployments table stores it."""
        ...

    def definition(self) -> dict[str, Any]:
        """Every field, as JSON-ready data (the ``definition`` column)."""
        ...


# --- deployments ----------------------------------------------------------------------------
def write_deployments(
    deployments: Sequence[DeploymentRecord], update: bool, new_id: Callable[[], str]
) -> None:
    """Insert each deployment, or replace the one of its name when ``update`` is true.

    All or none, in one transaction. Sets ``id``, ``created`` and ``updated``
    on each: a replaced deployment keeps its id and creation time.

    Raises
    ------
    ConfigurationError
        A name exists and ``update`` is false.
    """
    now = time.time()
    with _transaction() as con:
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


def deployment_rows() -> list[tuple[Any, Any, Any]]:
    """``(definition, id, name)`` of every deployment, by name."""
    with _connect(read_only=True) as con:
        return con.execute("SELECT definition, id, name FROM deployments ORDER BY name").fetchall()


def deployment_row(name: str) -> tuple[Any, Any, Any] | None:
    """``(definition, id, name)`` of the deployment called ``name``, or None."""
    with _connect(read_only=True) as con:
        return con.execute(
            "SELECT definition, id, name FROM deployments WHERE name = ?", [name]
        ).fetchone()


def delete_deployment_row(deployment_id: str) -> None:
    """Remove deployment ``deployment_id``; its fires and tries stay in the history."""
    with _connect() as con:
        con.execute("DELETE FROM deployments WHERE id = ?", [deployment_id])


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
    with _transaction() as con:
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
    return bool(got)


def claim_skipped(deployment_id: str, slots: Iterable[tuple[float, str]]) -> list[float]:
    """Claim missed slots as skipped, in one transaction; return the times this caller got."""
    got: list[float] = []
    slots = list(slots)
    if not slots:
        return got
    with _transaction() as con:
        for when, run_id in slots:
            if con.execute(
                "INSERT INTO deployment_fires VALUES (?, to_timestamp(?), ?, 'skipped', "
                "'{}', now(), ?) ON CONFLICT DO NOTHING RETURNING flow_run_id",
                [deployment_id, when, run_id, claimer()],
            ).fetchall():
                got.append(when)
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


# --- the scheduler's queue ----------------------------------------------------------------------
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


_ORPHAN_KEYS = (
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
    found = [dict(zip(_ORPHAN_KEYS, r, strict=True)) for r in rows]
    for row in found:
        row["parameters"] = json.loads(row["parameters"] or "{}")
    return found


def recorded_run_name(flow_run_id: str) -> str | None:
    """The name of flow run ``flow_run_id`` as recorded so far, or None when not recorded yet.

    Read after a compaction, so a run whose claimer recorded it just before
    dying is found.
    """
    from kernelflow.store.queries import sql

    found = sql("SELECT name FROM flow_runs WHERE id = ?", [flow_run_id])
    if len(found) == 0 or found["name"].iloc[0] is None:
        return None
    return str(found["name"].iloc[0])
