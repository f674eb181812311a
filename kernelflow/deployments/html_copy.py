"""The HTML copy of a deployment run's executed notebook, made the first time it is asked for.

A run leaves ``<run id>.ipynb`` under the store's ``outputs/<deployment>/``
(:func:`kernelflow.deployments.execution.output_paths`). Rendering it with
nbconvert costs about 0.6 s of CPU (its import, templates, syntax
highlighting), more than the rest of a trivial run's worker, and most runs'
HTML is never looked at. So the worker writes no HTML: :func:`html_copy`
renders it when the panel, a REST client (``GET runs/<id>/html``) or a user
asks for it, and keeps it next to the notebook as ``<run id>.html``. Later
requests read that file, until the notebook is newer (a retry rewrote it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["html_copy", "html_path"]


def html_path(notebook: str | os.PathLike[str]) -> Path:
    """Where the HTML copy of the executed notebook ``notebook`` is kept."""
    return Path(notebook).with_suffix(".html")


def html_copy(notebook: str | os.PathLike[str]) -> Path:
    """The path of ``notebook``'s HTML copy, rendered now if missing or older than it.

    The copy is written atomically (mode 0600, as the notebook): two requests
    at once both render, and each reader sees a whole file.

    Raises
    ------
    OSError
        The notebook cannot be read, or the copy cannot be written.
    ValueError
        The notebook is not one nbconvert can read.

    Examples
    --------
    >>> html_copy(store / "outputs" / "daily" / f"{run.id}.ipynb")  # doctest: +SKIP
    PosixPath('.../outputs/daily/01a2....html')
    """
    source = Path(notebook)
    target = html_path(source)
    made = source.stat().st_mtime_ns  # raises for a missing notebook, as the caller wants
    try:
        seen = target.lstat()
        # Only a regular file counts: anything else there (a link pointing out of the
        # store) is replaced by the copy, never read.
        if stat.S_ISREG(seen.st_mode) and seen.st_mtime_ns >= made:
            return target
    except FileNotFoundError:
        pass
    import nbformat
    from nbconvert import HTMLExporter

    from kernelflow import settings

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(source, as_version=4))
    settings.write_private(target, body.encode("utf-8"))
    return target
