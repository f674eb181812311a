"""Prefect's exception names (``prefect.exceptions`` -> ``kernelflow.exceptions``).

Each name is kernelflow's own class from :mod:`kernelflow.errors`, so
``except`` clauses written for Prefect catch what kernelflow raises::

    from kernelflow.exceptions import CrashedRun, FailedRun, ParameterTypeError

==========================  ====================================  ================================
Prefect name                kernelflow class (errors.py)          raised when
==========================  ====================================  ================================
``PrefectException``        ``KernelflowError``                   (the base of all below)
``FailedRun``               ``FailedRun``                         ``.result()`` of a failed state
                                                                  without an exception of its own
``CrashedRun``              ``CrashedRun`` (a ``FailedRun``)      ... of a Crashed state
``CancelledRun``            ``CancelledRun`` (a ``FailedRun``)    ... of a Cancelled state
``UnfinishedRun``           ``UnfinishedRun`` (a ``FailedRun``)   ... of a state not final
``UpstreamTaskError``       ``UpstreamTaskError``                 an input's task did not complete
``MissingContextError``     ``MissingContextError``               no flow or task run is active
``ParameterTypeError``      ``ParameterTypeError``                a flow argument's type is wrong
``TaskRunTimeoutError``     ``TaskRunTimeoutError``               a task ran past its timeout
``FlowRunTimeoutError``     ``FlowRunTimeoutError``               a flow ran past its timeout
``FlowPauseTimeout``        ``FlowPauseTimeout``                  a pause was not resumed in time
``NotPausedError``          ``NotPausedError``                    resuming a run that is not paused
``ConfigurationError``      ``ConfigurationError``                a bad option
``MappingLengthMismatch``   ``ConfigurationError``                ``.map()`` iterables differ
``MappingMissingIterable``  ``ConfigurationError``                ``.map()`` has no iterable
``MissingResult``           ``ResultMissingError``                a stored result is gone
``SerializationError``      ``ResultSerializationError``          a result cannot be stored
``HashError``               ``HashingError``                      a cache input cannot be hashed
==========================  ====================================  ================================

Two differences from Prefect: ``CrashedRun``, ``CancelledRun`` and
``UnfinishedRun`` are kinds of ``FailedRun`` (in Prefect they are siblings),
so ``except FailedRun`` catches all four; and the two ``Mapping...`` names are
one class, kernelflow's ``ConfigurationError``, which ``.map()`` raises for both.
``TaskRunTimeoutError`` and ``FlowRunTimeoutError`` live in Prefect's engine
modules; here they are with the others.
"""

from __future__ import annotations

from kernelflow.errors import (
    CancelledRun,
    ConfigurationError,
    CrashedRun,
    FailedRun,
    FlowPauseTimeout,
    FlowRunTimeoutError,
    HashingError,
    KernelflowError,
    MissingContextError,
    NotPausedError,
    ParameterTypeError,
    ResultMissingError,
    ResultSerializationError,
    TaskRunTimeoutError,
    UnfinishedRun,
    UpstreamTaskError,
)

__all__ = [
    "CancelledRun",
    "ConfigurationError",
    "CrashedRun",
    "FailedRun",
    "FlowPauseTimeout",
    "FlowRunTimeoutError",
    "HashError",
    "MappingLengthMismatch",
    "MappingMissingIterable",
    "MissingContextError",
    "MissingResult",
    "NotPausedError",
    "ParameterTypeError",
    "PrefectException",
    "SerializationError",
    "TaskRunTimeoutError",
    "UnfinishedRun",
    "UpstreamTaskError",
]

#: Prefect's base class of its errors: kernelflow's.
PrefectException = KernelflowError
#: ``Task.map()`` with iterables of different lengths raises ConfigurationError.
MappingLengthMismatch = ConfigurationError
#: ``Task.map()`` without an iterable argument raises ConfigurationError.
MappingMissingIterable = ConfigurationError
#: A persisted result that is missing or corrupt.
MissingResult = ResultMissingError
#: A return value that cannot be written to the result store.
SerializationError = ResultSerializationError
#: A cache input that cannot be hashed.
HashError = HashingError
