"""Typed input for paused flow runs (Prefect's ``prefect.input``).

>>> from kernelflow.input import RunInput
>>> class UserInput(RunInput):
...     name: str
...     age: int = 30

``pause_flow_run(wait_for_input=UserInput)`` then waits until the run is
resumed with a ``name`` (from the form in a notebook, or with
``kernelflow flow-run resume ID --input name=Ada``) and returns a
``UserInput``. See :mod:`kernelflow.flow_runs`.

Prefect's ``send_input`` / ``receive_input`` (input to a flow run that keeps
running) are not part of kernelflow.
"""

from __future__ import annotations

from kernelflow.input.run_input import RunInput

__all__ = ["RunInput"]
