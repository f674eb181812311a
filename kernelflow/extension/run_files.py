"""The files a deployment run wrote: its executed notebook and HTML copy, found by run id.

Both ``GET runs/<id>/notebook`` (``/html``) and the ``has_notebook`` /
``has_html`` fields of a run's detail use :func:`run_files`, so a true field
is never a 404 there. The HTML copy is made from the executed notebook the
first time it is asked for (:mod:`kernelflow.deployments.html_copy`): a run
with a notebook has an HTML copy to serve, written or not yet.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kernelflow.errors import KernelflowError, RunNotFoundError

__all__ = ["NotebookNotFoundError", "run_file", "run_files"]


class NotebookNotFoundError(KernelflowError, LookupError):
    """No notebook at that path under the server's root (a 404)."""


#: What a run id may look like before it is looked up (it also names files).
_RUN_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def _run_row(run_id: str) -> dict[str, Any]:
    from kernelflow.store.queries import get_flow_run

    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise RunNotFoundError(f"No flow run has the id {str(run_id)[:80]!r}.")
    return {str(key): value for key, value in get_flow_run(run_id).iloc[0].to_dict().items()}


def run_files(run_id: str) -> dict[str, Path | None]:
    """The executed notebook and HTML copy of a deployment run, or None for each it lacks.

    They are ``<home>/outputs/<deployment>/<run id>.ipynb`` and ``.html``
    (see :meth:`kernelflow.deployments.execution.RunExecution.job`), looked
    up by the run's full id under the store's ``outputs`` folder. With a
    notebook, ``html`` is where its copy is or will be made (:func:`run_file`
    makes it).
    """
    from kernelflow import settings
    from kernelflow.deployments.html_copy import html_path

    row = _run_row(run_id)
    outputs = settings.paths().outputs.resolve()
    found: dict[str, Path | None] = {"notebook": None, "html": None}
    for key, suffix in (("notebook", ".ipynb"), ("html", ".html")):
        for candidate in sorted(outputs.glob(f"*/{row['id']}{suffix}")):
            real = candidate.resolve()
            if outputs in real.parents and real.is_file():
                found[key] = real
                break
    if found["notebook"] is not None:
        found["html"] = html_path(found["notebook"])
    return found


def run_file(run_id: str, kind: str) -> bytes:
    """The bytes of a run's executed notebook (``kind="notebook"``) or HTML copy (``"html"``).

    The HTML copy is rendered from the notebook when it is missing or older.
    """
    found = run_files(run_id)
    path = found[kind]
    if path is None:
        what = "executed notebook" if kind == "notebook" else "HTML copy"
        raise NotebookNotFoundError(
            f"Run {run_id} has no {what}; only deployment runs that started write one."
        )
    if kind == "html" and found["notebook"] is not None:
        from kernelflow.deployments.html_copy import html_copy

        try:
            path = html_copy(found["notebook"])
        except Exception as exc:  # nbconvert's errors have no common base: said in the 404
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise NotebookNotFoundError(
                f"Run {run_id}'s executed notebook cannot be shown as HTML ({reason}); "
                "open the notebook instead."
            ) from None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise NotebookNotFoundError(f"{path.name} cannot be read ({exc.strerror}).") from None
