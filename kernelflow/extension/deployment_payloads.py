"""``GET /kernelflow/api/deployments``: each deployment with its next and last run.

Read from the store like every payload (:mod:`kernelflow.extension.payloads`);
the deployment actions answer with an item of this list.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from kernelflow.errors import ConfigurationError
from kernelflow.extension.payloads import _iso, _records

__all__ = ["deployments_overview"]


def deployments_overview(now: dt.datetime | None = None) -> dict[str, Any]:
    """``GET /kernelflow/api/deployments``: each deployment with its next and last run.

    Parameters
    ----------
    now
        The instant "next run" is computed from (default: now).

    Returns
    -------
    dict
        ``deployments`` (by name: ``name``, ``schedule``, ``paused``,
        ``next_run``, ``last_run``, ``problem``: why ``next_run`` is
        unknown, or ``None``, and the settings the panel's edit dialog starts
        from: ``cron``, ``interval``, ``timezone``, ``parameters``,
        ``timeout``, ``retries``, ``retry_delay``, ``catchup``, ``notify``)
        and ``note``: ``None``, or why the
        list is empty although deployments may exist (a store without the
        ``deployments`` table).
    """
    from kernelflow.deployments.models import Deployment
    from kernelflow.store.queries import deployment_definitions, last_deployment_run_rows

    definitions = deployment_definitions()
    if definitions is None:
        return {
            "deployments": [],
            "note": "This store has no deployments table yet; it is created when kernelflow "
            "with notebook deployments opens the store (upgrade kernelflow, then run "
            "'kernelflow deployment ls').",
        }
    last_by_id = {row.pop("deployment_id"): row for row in _records(last_deployment_run_rows())}
    now = now or dt.datetime.now(dt.timezone.utc)
    deployments = []
    for raw in definitions:
        deployment = Deployment.from_definition(json.loads(raw))
        next_run = problem = None
        try:
            schedule = deployment.schedule()
            if schedule is not None and not deployment.paused:
                next_run = _iso(schedule.next_after(now))
        except ConfigurationError as exc:
            # A stored schedule this version cannot read: list the deployment and say why,
            # rather than failing the whole list.
            problem = str(exc)
        deployments.append(
            {
                "id": deployment.id,
                "name": deployment.name,
                "notebook": deployment.notebook,
                "schedule": deployment.describe_schedule(),
                "paused": deployment.paused,
                "tags": list(deployment.tags),
                "next_run": next_run,
                "last_run": last_by_id.get(deployment.id),
                "problem": problem,
                # What the panel's edit dialog starts from (as `kernelflow deployment inspect`).
                "cron": deployment.cron,
                "interval": deployment.interval,
                "timezone": deployment.timezone,
                "parameters": deployment.parameters,
                "timeout": deployment.timeout,
                "retries": deployment.retries,
                "retry_delay": deployment.retry_delay,
                "catchup": deployment.catchup,
                "notify": list(deployment.notify),
            }
        )
    return {"deployments": deployments, "note": None}
