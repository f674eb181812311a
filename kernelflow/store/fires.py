"""Read queries about deployment fires, for acting on a run from the server extension."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["fire_parameters"]


def fire_parameters(flow_run_id: str) -> dict[str, Any] | None:
    """The parameters given to the fire that made deployment run ``flow_run_id``.

    These are the values given for that run (``run now`` overrides, an
    ``--after`` trigger's upstream id), over the deployment's own, exactly
    as claimed: what a rerun gives again. None when no fire made that run.
    """
    from kernelflow.store.queries import sql

    found = sql(
        "SELECT parameters FROM deployment_fires WHERE flow_run_id = ? LIMIT 1", [flow_run_id]
    )
    if len(found) == 0:
        return None
    raw = found["parameters"].iloc[0]
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
