"""Progress artifacts: created with a percentage, then moved on in place.

An update is one ``artifact_update`` journal append, cheap enough for a tight
loop; the store and the run's live view follow.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid

from kernelflow.artifacts._create import _check_key, _create
from kernelflow.artifacts._listeners import _notify
from kernelflow.errors import ConfigurationError

__all__ = [
    "acreate_progress_artifact",
    "aupdate_progress_artifact",
    "create_progress_artifact",
    "update_progress_artifact",
]

logger = logging.getLogger("kernelflow.artifacts")


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Create a progress artifact; move it on with :func:`update_progress_artifact`.

    Parameters
    ----------
    progress
        Percent done, 0 to 100 (a value outside is logged and clamped, as in Prefect).
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
    >>> progress = create_progress_artifact(0.0, key="files-loaded")  # doctest: +SKIP
    >>> update_progress_artifact(progress, 50.0)  # doctest: +SKIP
    """
    return _create("progress", _check_key(key), description, _progress(progress))


def update_progress_artifact(
    artifact_id: uuid.UUID | str, progress: float, description: str | None = None
) -> uuid.UUID:
    """Set a progress artifact's percentage (and its description, when given).

    Costs one journal append, so it can run in a tight loop; the store and
    the run's live view follow.

    Parameters
    ----------
    artifact_id
        What :func:`create_progress_artifact` returned.
    progress
        Percent done, 0 to 100 (clamped, with a warning, outside that).
    description
        A new description; None keeps the current one.

    Returns
    -------
    uuid.UUID
        ``artifact_id``.
    """
    try:
        artifact_uuid = uuid.UUID(str(artifact_id))
    except ValueError:
        raise ConfigurationError(
            f"update_progress_artifact takes the id create_progress_artifact returned, "
            f"not {artifact_id!r}."
        ) from None
    data = _progress(progress)
    from kernelflow.store.events import artifact_updated
    from kernelflow.store.journal import record

    event = artifact_updated(
        id=str(artifact_uuid), data=data, description=description or None, t=time.time()
    )

    record(event)
    _notify(event)
    return artifact_uuid


async def acreate_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """:func:`create_progress_artifact`, to ``await``."""
    return create_progress_artifact(progress, key, description)


async def aupdate_progress_artifact(
    artifact_id: uuid.UUID | str, progress: float, description: str | None = None
) -> uuid.UUID:
    """:func:`update_progress_artifact`, to ``await``."""
    return update_progress_artifact(artifact_id, progress, description)


def _progress(progress: float) -> str:
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        raise ConfigurationError(
            f"A progress artifact takes a number from 0 to 100, not {progress!r}."
        )
    value = float(progress)
    if math.isnan(value):
        raise ConfigurationError("A progress artifact takes a number from 0 to 100, not NaN.")
    if not 0.0 <= value <= 100.0:
        clamped = min(100.0, max(0.0, value))
        logger.warning(
            "Progress artifact received %s%%, outside 0-100; recording %s%%", progress, clamped
        )
        value = clamped
    return json.dumps(value)
