"""Log lines of the runs a live view shows, kept in memory and keyed by run id.

A handler on the ``kernelflow`` logger: run loggers tag every record with
``run_id`` (see :mod:`kernelflow.logs`), so a record of a run that a live
view shows goes into that view's model; every other record costs one dict
lookup. The store keeps all lines anyway; this only spares a live view a
database round trip when the user opens a row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from kernelflow.widgets._faults import report

__all__ = ["RETRY_DELAY", "ViewLogHandler"]

#: The attribute of the engine's "Retry n/m will start ..." log record holding the
#: seconds until the next try (set through the record's ``extra``).
RETRY_DELAY = "retry_delay"


class ViewLogHandler(logging.Handler):
    """Routes run log records to the model of the view showing the run.

    Parameters
    ----------
    find_model:
        Returns the :class:`~kernelflow.widgets._model.RunModel` showing a run
        id, or None.
    """

    def __init__(self, find_model: Callable[[str], Any]) -> None:
        super().__init__()
        self.find_model = find_model

    def handle(self, record: logging.LogRecord) -> bool:
        """Hand ``record`` to its run's view, if one shows it (no handler lock: models lock).

        Called for every record of every run: :meth:`emit`'s work is done here,
        which spares a call per record.
        """
        run_id = getattr(record, "run_id", None)
        if run_id is None:
            return True
        model = self.find_model(run_id)
        if model is None:
            return True
        try:
            delay = getattr(record, RETRY_DELAY, None)
            if delay is not None:
                model.on_retry_scheduled(run_id, float(delay))
            model.add_log(run_id, record)
        except Exception as exc:  # a log line must never break a run
            report("keeping a log line for a live view", exc)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Hand ``record`` to its run's view (see :meth:`handle`)."""
        self.handle(record)
