"""Events: ``emit_event`` records that something happened, as Prefect's ``prefect.events``.

>>> from kernelflow.events import emit_event
>>> event = emit_event(
...     event="warehouse.table.refreshed",
...     resource={"prefect.resource.id": "warehouse.table.sales"},
...     payload={"rows": 1200},
... )
>>> event.event, event.resource.id, event.payload
('warehouse.table.refreshed', 'warehouse.table.sales', {'rows': 1200})

Each event is one journal append (microseconds, no database) and then a row
of the ``events`` table, with the flow run and task run that emitted it:
``kernelflow.sql("SELECT event, resource_id, payload FROM events")``. Inside a
run, the run is also added to the event's ``related`` resources (roles
``flow-run`` and ``task-run``), as Prefect's event worker does.

kernelflow has no automations: an event is a record to query, not a trigger.
As in Prefect, :func:`emit_event` never raises for a malformed event (a
resource without ``prefect.resource.id``, a payload that is not JSON): it logs
the problem and returns None.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["Event", "RelatedResource", "Resource", "emit_event"]

logger = logging.getLogger("kernelflow.events")

#: As Prefect: a ``follows`` event more than this much earlier is not linked.
TIGHT_TIMING = dt.timedelta(minutes=5)


class Resource(dict):
    """The labels of a resource an event concerns; ``prefect.resource.id`` is required.

    Parameters
    ----------
    labels
        Label name -> string value.

    Raises
    ------
    ValueError
        No non-empty ``prefect.resource.id`` label, or a label that is not a string.
    """

    def __init__(self, labels: Mapping[str, str]) -> None:
        super().__init__(labels)
        for label, value in self.items():
            if not isinstance(label, str) or not isinstance(value, str):
                raise ValueError(
                    f"Resource labels are strings, not {label!r}: {value!r} "
                    '(e.g. {"prefect.resource.id": "my.resource"}).'
                )
        if not self.get("prefect.resource.id"):
            raise ValueError("Resources must include the prefect.resource.id label")

    @property
    def id(self) -> str:
        """The ``prefect.resource.id`` label."""
        return self["prefect.resource.id"]

    @property
    def name(self) -> str | None:
        """The ``prefect.resource.name`` label, if any."""
        return self.get("prefect.resource.name")


class RelatedResource(Resource):
    """A resource with a role in an event: ``prefect.resource.role`` is required too."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        super().__init__(labels)
        if not self.get("prefect.resource.role"):
            raise ValueError("Related Resources must include the prefect.resource.role label")

    @property
    def role(self) -> str:
        """The ``prefect.resource.role`` label."""
        return self["prefect.resource.role"]


class Event:
    """Something that happened to a resource, as :func:`emit_event` recorded it.

    Attributes
    ----------
    id
        A UUID (given, or a new time-ordered one).
    event
        Its name, e.g. ``"warehouse.table.refreshed"``.
    occurred
        When it happened (UTC datetime).
    resource
        The :class:`Resource` it concerns.
    related
        Other resources involved (:class:`RelatedResource`), including the
        run that emitted it.
    payload
        What happened, as a JSON object.
    follows
        The id of an event known to have happened just before, or None.
    """

    __slots__ = ("event", "follows", "id", "occurred", "payload", "related", "resource")

    def __init__(
        self,
        event: str,
        resource: Mapping[str, str],
        occurred: dt.datetime | None = None,
        related: list[Mapping[str, str]] | None = None,
        payload: dict[str, Any] | None = None,
        id: uuid.UUID | None = None,  # shadows the builtin: Prefect's keyword
        follows: uuid.UUID | None = None,
    ) -> None:
        if not isinstance(event, str) or not event:
            raise ValueError(f"An event's name is a non-empty string, not {event!r}.")
        self.event = event
        self.resource = resource if isinstance(resource, Resource) else Resource(resource)
        self.occurred = _utc(occurred) if occurred is not None else dt.datetime.now(dt.timezone.utc)
        self.related = [
            r if isinstance(r, RelatedResource) else RelatedResource(r) for r in related or ()
        ]
        self.payload = dict(payload or {})
        self.id = id if isinstance(id, uuid.UUID) else uuid.UUID(str(id)) if id else _new_uuid()
        self.follows = follows

    def __repr__(self) -> str:
        return (
            f"Event(event={self.event!r}, resource={dict(self.resource)!r}, "
            f"occurred={self.occurred.isoformat()!r}, id={str(self.id)!r})"
        )

    @property
    def involved_resources(self) -> list[Resource]:
        """The resource and the related ones."""
        return [self.resource, *self.related]


def emit_event(
    event: str,
    resource: dict[str, str],
    occurred: dt.datetime | None = None,
    related: list[dict[str, str]] | list[RelatedResource] | None = None,
    payload: dict[str, Any] | None = None,
    id: uuid.UUID | None = None,  # shadows the builtin: Prefect's keyword
    follows: Event | None = None,
    **kwargs: Any,
) -> Event | None:
    """Record an event in the store.

    Parameters
    ----------
    event
        What happened, e.g. ``"warehouse.table.refreshed"``.
    resource
        The resource it happened to: labels, with ``prefect.resource.id`` required.
    occurred
        When (default: now).
    related
        Other resources involved, each with ``prefect.resource.id`` and
        ``prefect.resource.role``. The current flow run and task run are added.
    payload
        What happened, as a JSON object.
    id
        The event's id (default: a new UUID); an id recorded before is not recorded again.
    follows
        An event known to have happened just before (linked if within 5 minutes).
    **kwargs
        Accepted and ignored, as Prefect does with fields it does not know.

    Returns
    -------
    Event or None
        The recorded event; None if it was malformed (the reason is logged).

    Examples
    --------
    >>> emit_event("model.trained", {"prefect.resource.id": "model.churn"},
    ...            payload={"auc": 0.91})  # doctest: +SKIP
    Event(event='model.trained', ...)
    """
    from kernelflow.store.events import event_emitted

    try:
        created = Event(
            event=event,
            resource=resource,
            occurred=occurred,
            related=list(related or ()),
            payload=payload,
            id=id,
        )
        if (
            follows is not None
            and -TIGHT_TIMING < created.occurred - follows.occurred < TIGHT_TIMING
        ):
            created.follows = follows.id
        task_run_id, flow_run_id = _run_resources(created)
        line = event_emitted(
            id=str(created.id),
            event=created.event,
            occurred=created.occurred.timestamp(),
            resource=dict(created.resource),
            related=[dict(r) for r in created.related],
            payload=created.payload,
            flow_run_id=flow_run_id,
            task_run_id=task_run_id,
            t=time.time(),
        )
        # Checked here, not left to the journal's repr fallback: a payload must read back.
        json.dumps(line["payload"], allow_nan=False)
    except (TypeError, ValueError) as exc:
        logger.error("kernelflow: event %r not recorded: %s", event, exc)
        return None
    from kernelflow.store.journal import record

    record(line)
    return created


def _run_resources(event: Event) -> tuple[str | None, str | None]:
    """Add the emitting run(s) to ``event.related``; return (task_run_id, flow_run_id)."""
    from kernelflow import context

    task_ctx = context.task_context.get()
    flow_ctx = context.current_flow_context()
    task_run = task_ctx.task_run if task_ctx is not None else None
    flow_run = flow_ctx.flow_run if flow_ctx is not None and task_run is None else None
    flow_run_id = task_run.flow_run_id if task_run is not None else getattr(flow_run, "id", None)
    present = {r.id for r in event.involved_resources}
    runs = []
    if flow_run_id is not None:
        runs.append(("flow-run", flow_run_id, getattr(flow_run, "name", None)))
    if task_run is not None:
        runs.append(("task-run", task_run.id, task_run.name))
    for role, run_id, name in runs:
        resource_id = f"prefect.{role}.{run_id}"
        if resource_id in present:
            continue
        labels = {"prefect.resource.id": resource_id, "prefect.resource.role": role}
        if name:
            labels["prefect.resource.name"] = name
        event.related.append(RelatedResource(labels))
    return (task_run.id if task_run is not None else None), flow_run_id


def _utc(when: dt.datetime) -> dt.datetime:
    if not isinstance(when, dt.datetime):
        raise ValueError(f"occurred is a datetime, not {when!r}.")
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


def _new_uuid() -> uuid.UUID:
    from kernelflow.runs import new_id

    return uuid.UUID(new_id())
