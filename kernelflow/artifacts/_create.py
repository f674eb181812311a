"""Creating artifacts: the :class:`Artifact` class, markdown, link and table artifacts.

Each creation is one journal append (:func:`_create`), then the listeners of
:mod:`kernelflow.artifacts._listeners` are told.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
import uuid
from typing import Any

from kernelflow.artifacts._listeners import _notify
from kernelflow.artifacts._summary import _data, _datetime, _value
from kernelflow.errors import ConfigurationError

__all__ = [
    "Artifact",
    "Table",
    "acreate_link_artifact",
    "acreate_markdown_artifact",
    "acreate_table_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_table_artifact",
]

_KEY = re.compile(r"[a-z0-9-]*")

Table = dict[str, list[Any]] | list[dict[str, Any]] | list[list[Any]]


class Artifact:
    """An artifact: a piece of data a run leaves for people to read.

    Build one to create a generic artifact (its ``data`` stored as JSON), or
    read the latest version of a key with :meth:`get`.

    Parameters
    ----------
    type
        What kind of artifact it is (``"markdown"``, ``"table"``, ``"progress"``...).
    key
        Lowercase letters, digits and dashes; artifacts sharing a key are its versions.
    description
        Markdown shown with it.
    data
        Any JSON-serialisable value (stored as JSON text).

    Attributes
    ----------
    id
        A UUID, once created or read.
    flow_run_id, task_run_id
        The runs it belongs to (None outside a run).
    created, updated
        UTC datetimes, once read from the store.

    Examples
    --------
    >>> Artifact(type="metric", key="accuracy", data={"value": 0.93}).create()  # doctest: +SKIP
    >>> Artifact.get("accuracy").data  # doctest: +SKIP
    '{"value": 0.93}'
    """

    def __init__(
        self,
        type: str | None = None,  # shadows the builtin: Prefect's keyword
        key: str | None = None,
        description: str | None = None,
        data: Any = None,
        flow_run_id: str | None = None,
        task_run_id: str | None = None,
    ) -> None:
        self.id: uuid.UUID | None = None
        self.type = type
        self.key = _check_key(key)
        self.description = description
        self.data = data
        self.flow_run_id = flow_run_id
        self.task_run_id = task_run_id
        self.created: dt.datetime | None = None
        self.updated: dt.datetime | None = None

    def __repr__(self) -> str:
        return (
            f"Artifact(id={self.id!r}, key={self.key!r}, type={self.type!r}, "
            f"description={self.description!r})"
        )

    def create(self) -> Artifact:
        """Record this artifact, with ``data`` as JSON, under the current run; return it.

        Returns
        -------
        Artifact
            This artifact, with its ``id``, ``flow_run_id`` and ``task_run_id`` set.
        """
        data = _json(self.data, "artifact data")
        if self.flow_run_id is None and self.task_run_id is None:
            self.task_run_id, self.flow_run_id = _run_ids()
        self.id = _create(
            self.type, self.key, self.description, data, self.flow_run_id, self.task_run_id
        )
        return self

    @classmethod
    def get(cls, key: str) -> Artifact | None:
        """The most recently updated artifact with ``key``, or None.

        Reads the store (after folding pending journals), so it needs duckdb.

        Parameters
        ----------
        key
            The artifact key.

        Returns
        -------
        Artifact or None
            ``data`` is as stored: text, or a float for progress.
        """
        from kernelflow.store.queries import latest_artifact

        frame = latest_artifact(key)
        if frame.empty:
            return None
        row = frame.iloc[0]
        found = cls(
            type=_value(row["type"]),
            key=_value(row["key"]),
            description=_value(row["description"]),
            data=_data(_value(row["type"]), _value(row["data"])),
            flow_run_id=_value(row["flow_run_id"]),
            task_run_id=_value(row["task_run_id"]),
        )
        found.id = uuid.UUID(row["id"])
        found.created = _datetime(row["created"])
        found.updated = _datetime(row["updated"])
        return found


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Create a markdown artifact.

    Parameters
    ----------
    markdown
        The markdown text.
    key
        Lowercase letters, digits and dashes; artifacts sharing a key are its versions.
    description
        Markdown shown with it.

    Returns
    -------
    uuid.UUID
        The artifact's id.

    Raises
    ------
    ConfigurationError
        ``markdown`` is not a string, or ``key`` has other characters.

    Examples
    --------
    >>> create_markdown_artifact("## Done\\n3 files written", key="load-summary")  # doctest: +SKIP
    UUID('0193...')
    """
    if not isinstance(markdown, str):
        raise ConfigurationError(
            f"create_markdown_artifact takes markdown text (a str), not {type(markdown).__name__}."
        )
    return _create("markdown", _check_key(key), description, markdown)


def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """Create a link artifact, stored as Prefect does: markdown ``[link_text](link)``.

    Parameters
    ----------
    link
        The URL.
    link_text
        The text shown for it (default: the link itself).
    key
        Lowercase letters, digits and dashes; artifacts sharing a key are its versions.
    description
        Markdown shown with it.

    Returns
    -------
    uuid.UUID
        The artifact's id.

    Examples
    --------
    >>> create_link_artifact("https://example.com/report.csv", "report")  # doctest: +SKIP
    UUID('0193...')
    """
    if not isinstance(link, str):
        raise ConfigurationError(
            f"create_link_artifact takes the link as a str, not {type(link).__name__}."
        )
    text = f"[{link_text}]({link})" if link_text else f"[{link}]({link})"
    return _create("markdown", _check_key(key), description, text)


def create_table_artifact(
    table: Table, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Create a table artifact.

    Parameters
    ----------
    table
        A list of dicts (one per row), a dict of lists (one per column) or a
        list of lists (rows). NaN becomes null; other values that JSON lacks
        (dates, decimals) are stored as their ``str``. For a DataFrame, pass
        ``df.to_dict(orient="records")``.
    key
        Lowercase letters, digits and dashes; artifacts sharing a key are its versions.
    description
        Markdown shown with it.

    Returns
    -------
    uuid.UUID
        The artifact's id.

    Raises
    ------
    ConfigurationError
        ``table`` has none of the three shapes.

    Examples
    --------
    >>> create_table_artifact({"city": ["Oslo", "Lima"], "temp": [4, 19]})  # doctest: +SKIP
    UUID('0193...')
    """
    if not _is_table(table):
        raise ConfigurationError(
            "create_table_artifact takes a list of dicts, a dict of lists or a list of lists, "
            f"not {type(table).__name__}; for a DataFrame pass df.to_dict(orient='records')."
        )
    data = json.dumps(_sanitize(table), default=str, allow_nan=False)
    return _create("table", _check_key(key), description, data)


async def acreate_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """:func:`create_markdown_artifact`, to ``await`` (it never blocks: one journal append)."""
    return create_markdown_artifact(markdown, key, description)


async def acreate_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """:func:`create_link_artifact`, to ``await``."""
    return create_link_artifact(link, link_text, key, description)


async def acreate_table_artifact(
    table: Table, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """:func:`create_table_artifact`, to ``await``."""
    return create_table_artifact(table, key, description)


# --- helpers -----------------------------------------------------------------------------------


def _run_ids() -> tuple[str | None, str | None]:
    """(task_run_id, flow_run_id) of the calling code; (None, None) outside any run."""
    from kernelflow import context

    task_ctx = context.task_context.get()
    if task_ctx is not None:
        return task_ctx.task_run.id, task_ctx.task_run.flow_run_id
    flow_ctx = context.current_flow_context()
    if flow_ctx is not None:
        return None, flow_ctx.flow_run.id  # a notebook's session run starts here if need be
    return None, None


def _create(
    type_: str | None,
    key: str | None,
    description: str | None,
    data: str,
    flow_run_id: str | None = None,
    task_run_id: str | None = None,
) -> uuid.UUID:
    from kernelflow.runs import new_id
    from kernelflow.store.events import artifact_created
    from kernelflow.store.journal import record

    if flow_run_id is None and task_run_id is None:
        task_run_id, flow_run_id = _run_ids()
    artifact_id = new_id()
    event = artifact_created(
        id=artifact_id,
        key=key,
        type=type_,
        description=description,
        data=data,
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
        t=time.time(),
    )
    record(event)
    _notify(event)
    return uuid.UUID(artifact_id)


def _check_key(key: str | None) -> str | None:
    if key is not None and (not isinstance(key, str) or not _KEY.fullmatch(key)):
        raise ConfigurationError(
            f"Artifact key {key!r} must only contain lowercase letters, numbers, and dashes "
            "(e.g. 'daily-sales')."
        )
    return key


def _is_table(table: Any) -> bool:
    if isinstance(table, dict):
        return all(isinstance(k, str) and isinstance(v, list) for k, v in table.items())
    if isinstance(table, list):
        return all(isinstance(row, dict) for row in table) or all(
            isinstance(row, list) for row in table
        )
    return False


def _sanitize(item: Any) -> Any:
    """NaN to None, through lists and dicts (JSON has no NaN)."""
    if isinstance(item, list):
        return [_sanitize(x) for x in item]
    if isinstance(item, dict):
        return {k: _sanitize(v) for k, v in item.items()}
    if isinstance(item, float) and math.isnan(item):
        return None
    return item


def _json(value: Any, what: str) -> str:
    try:
        return json.dumps(_sanitize(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"The {what} must be JSON-serialisable: {exc}.") from None
