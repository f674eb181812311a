"""Webhook notifications for deployment runs that end Failed, TimedOut or Crashed.

The body is JSON with a Slack-compatible ``text`` field, plus the run's
fields for other receivers. A failing webhook is logged on the run and never
changes the run's state.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from kernelflow import settings

__all__ = ["notify_run", "payload"]

TIMEOUT_S = 5.0


def payload(deployment: Any, run: Any, state: Any) -> dict[str, Any]:
    """The JSON body posted for ``run`` of ``deployment`` ending in ``state``."""
    output = settings.paths().outputs / deployment.name / f"{run.id}.ipynb"
    text = (
        f"kernelflow: deployment '{deployment.name}' run '{run.name}' ended {state.name}"
        f"{': ' + state.message if state.message else ''}"
    )
    return {
        "text": text,
        "deployment": deployment.name,
        "flow_run_id": run.id,
        "flow_run_name": run.name,
        "state": state.name,
        "state_type": state.type.value,
        "message": state.message,
        "output": str(output) if output.exists() else None,
    }


def notify_run(deployment: Any, run: Any, state: Any) -> None:
    """POST :func:`payload` to each of the deployment's ``notify`` URLs; log, never raise."""
    from kernelflow.logs import run_logger

    log = run_logger("flow", run, "kernelflow.deployments")
    body = json.dumps(payload(deployment, run, state)).encode()
    for url in deployment.notify:
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                response.read()
            log.info("Notified %s of state %s", url, state.name)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            log.log(
                logging.WARNING,
                "Notification to %s failed (%s); the run is unaffected",
                url,
                reason,
            )
