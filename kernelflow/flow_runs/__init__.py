"""Pausing a flow run until someone resumes it, with typed input (Prefect's ``prefect.flow_runs``).

>>> from kernelflow import flow, pause_flow_run
>>> from kernelflow.input import RunInput
>>> class Approval(RunInput):
...     approved: bool
...     comment: str = ""
>>> @flow
... def release():
...     answer = pause_flow_run(wait_for_input=Approval, timeout=600)
...     return "shipped" if answer.approved else "held"

While it waits, the flow run is in state ``Paused`` (``Suspended`` for
:func:`suspend_flow_run`) and the thread that called the function is blocked;
task runs submitted before keep running. It is resumed

- in a notebook, from the form the cell shows: one input per field of the
  model and a Resume button (see :mod:`kernelflow.kernel.pause_form`);
- from anywhere else: ``kernelflow flow-run resume ID --input approved=true``
  in a terminal, or :func:`resume_flow_run` in Python, in any process on the
  machine that uses the same store (``KERNELFLOW_HOME``).

The run then goes back to ``Running`` and the call returns the input: an
instance of the model, or the value itself for a plain type
(``wait_for_input=str``, resumed with ``--input value=Ada``). Without a
resume within ``timeout`` seconds, the call raises
:class:`~kernelflow.errors.FlowPauseTimeout`, and the flow run ends ``Failed``
with Prefect's message ``The flow was failed and never resumed.``; a flow that
catches the error goes on, but still ends ``Failed`` (``The flow was
completed and never resumed.``), as Prefect's server decides for a run that
leaves a timed-out pause. How the paused process hears of a resume is
described in :mod:`kernelflow._resume`.

A pause with a ``key`` that already fired in the current try of the flow run
returns the input it got then, without pausing again (Prefect's pause keys);
the default key counts the pauses of the try, so each call pauses.

Differences from Prefect
------------------------
- **Input is validated before the run resumes.** The paused process checks
  the input with the model itself, including the model's own validators; input
  that does not fit is refused with :class:`~kernelflow.errors.RunInputError`
  (one line naming each field) and the run stays paused. Prefect's server
  checks only the JSON schema, so a model validator fails the flow after it
  resumed, with ``ValidationError``.
- **Suspending does not end the process.** There is no worker to stop and
  later restart the run, so :func:`suspend_flow_run` waits in place like
  :func:`pause_flow_run`. It differs in the state name (``Suspended``) and its
  default timeout (none, as in Prefect), and can suspend only the flow run it
  is called in.
- ``poll_interval`` is an upper bound: kernelflow looks for a resume every
  0.2 s (a directory listing), so a resume takes effect at once.
- ``timeout=None`` waits without limit (Prefect requires a number for pauses).
- ``resume_flow_run`` outside an async flow or task resumes at once, even
  where an event loop runs (a notebook cell); it returns an object that
  ``await`` accepts there, so Prefect's ``await resume_flow_run(...)`` works too.
  Errors: ``NotPausedError`` for a run that is not paused (as Prefect),
  ``RunInputError`` for input that does not fit (Prefect: ``RuntimeError``).
"""

from kernelflow.flow_runs._api import (
    apause_flow_run,
    aresume_flow_run,
    asuspend_flow_run,
    pause_flow_run,
    resume_flow_run,
    suspend_flow_run,
)

__all__ = [
    "apause_flow_run",
    "aresume_flow_run",
    "asuspend_flow_run",
    "pause_flow_run",
    "resume_flow_run",
    "suspend_flow_run",
]
