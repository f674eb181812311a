"""What becomes of a flow run that ends while its pause has timed out.

:mod:`kernelflow.flow_runs` (``pause_flow_run``, a user API above the engine)
notes here each run whose pause timed out; the engine, finishing a flow run
still in that Paused state, asks :func:`after_timed_out_pause` for its final
state.
"""

from __future__ import annotations

import threading
import weakref

from kernelflow.runs import FlowRun
from kernelflow.states import Failed, State

__all__ = ["after_timed_out_pause", "note_timed_out_pause"]

#: Runs whose pause timed out, with that Paused state (see :func:`after_timed_out_pause`).
_timed_out: weakref.WeakKeyDictionary[FlowRun, State] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def note_timed_out_pause(run: FlowRun, paused: State) -> None:
    """Remember that ``run``'s pause in state ``paused`` timed out."""
    with _lock:
        _timed_out[run] = paused


def after_timed_out_pause(run: FlowRun, state: State) -> State:
    """The final state of a run that ends while its timed-out pause is its state.

    Prefect's rule (its server's ``HandleResumingPausedFlows``): a run cannot
    leave a pause that timed out, so whatever it ends in becomes
    ``Failed("The flow was <that state's name> and never resumed.")``, e.g.
    ``The flow was failed and never resumed.`` for the usual uncaught
    :class:`~kernelflow.errors.FlowPauseTimeout`. Called by the engine when a
    flow run finishes in a PAUSED state; other states pass through.
    """
    with _lock:
        expired = _timed_out.get(run)
    if expired is None or expired is not run.state:
        return state
    return Failed(message=f"The flow was {state.name.lower()} and never resumed.", data=state.data)
