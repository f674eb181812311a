"""Artifacts: markdown, tables, links and progress attached to runs (``prefect.artifacts``).

>>> from kernelflow import flow
>>> from kernelflow.artifacts import create_markdown_artifact, create_table_artifact
>>> @flow
... def report():
...     create_markdown_artifact("# Sales\\nUp 4 %", key="sales-report")
...     create_table_artifact([{"region": "north", "sales": 10}], key="sales-table")
>>> report()

An artifact belongs to the flow run or task run that creates it (a task run's
artifact also names its flow run); outside any run it belongs to none, as in
Prefect. ``kernelflow runs show RUN_ID``, the run's live view in a notebook
and the REST API list a run's artifacts; every artifact is a row of the
``artifacts`` table (``kernelflow.sql("SELECT * FROM artifacts")``).

Creating one costs a journal append (microseconds, no database), so progress
can be updated in a loop. The row appears in the database at the next
compaction, which every query runs first.

Keys (optional) hold lowercase letters, digits and dashes. Several artifacts
may share a key: they are the versions of one artifact, and
:meth:`Artifact.get` returns the latest.

What each kind stores as ``data`` (Prefect's representation, as text):

- :func:`create_markdown_artifact`: ``type`` ``markdown``, the markdown;
- :func:`create_link_artifact`: ``type`` ``markdown`` (as in Prefect), the link
  as markdown, ``[link_text](link)``;
- :func:`create_table_artifact`: ``type`` ``table``, the table as JSON (NaN
  becomes null);
- :func:`create_progress_artifact`: ``type`` ``progress``, the percentage (0 to 100);
- :class:`Artifact` ``(type=..., data=...).create()``: any ``type``, ``data`` as JSON.
"""

from kernelflow.artifacts._create import (
    Artifact,
    acreate_link_artifact,
    acreate_markdown_artifact,
    acreate_table_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from kernelflow.artifacts._listeners import add_listener as add_listener
from kernelflow.artifacts._listeners import remove_listener as remove_listener
from kernelflow.artifacts._progress import (
    acreate_progress_artifact,
    aupdate_progress_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from kernelflow.artifacts._summary import summarize as summarize

__all__ = [
    "Artifact",
    "acreate_link_artifact",
    "acreate_markdown_artifact",
    "acreate_progress_artifact",
    "acreate_table_artifact",
    "aupdate_progress_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "update_progress_artifact",
]
