"""``@flow``: a function whose calls are flow runs, recorded in the store.

Example
-------
>>> from kernelflow import flow
>>> @flow(retries=1, log_prints=True)
... def hello(name: str = "world") -> str:
...     print(f"hello {name}")
...     return name
>>> hello()
'world'
>>> hello(return_state=True).is_completed()
True
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from kernelflow import engine
from kernelflow.errors import ConfigurationError
from kernelflow.options import (
    CallShape,
    check_delays,
    check_hooks,
    check_retries,
    check_seconds,
    render_run_name,
)
from kernelflow.runners import TaskRunner, ThreadPoolTaskRunner
from kernelflow.runs import random_run_name

__all__ = ["Flow", "flow"]

P = ParamSpec("P")
R = TypeVar("R")


class Flow(Generic[P, R]):
    """A function whose calls are flow runs. Made by :func:`flow`; see it for the options."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        version: str | None = None,
        flow_run_name: str | Callable[[], str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | datetime.timedelta | None = None,
        task_runner: TaskRunner | None = None,
        description: str | None = None,
        timeout_seconds: float | datetime.timedelta | None = None,
        validate_parameters: bool = True,
        persist_result: bool | None = None,
        log_prints: bool | None = None,
        tags: Iterable[str] | None = None,
        on_completion: list[Callable] | None = None,
        on_failure: list[Callable] | None = None,
        on_cancellation: list[Callable] | None = None,
        on_crashed: list[Callable] | None = None,
        on_running: list[Callable] | None = None,
    ) -> None:
        if not callable(fn):
            raise ConfigurationError(f"@flow needs a function, got {fn!r}.")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__).replace("_", "-")
        owner = f"flow '{self.name}'"
        self.version = version
        self.description = description or fn.__doc__
        self.flow_run_name = flow_run_name
        self.retries = check_retries(retries, owner)
        self.retry_delay_seconds = retry_delay_seconds
        self.delay_for_retry = check_delays(retry_delay_seconds, self.retries, owner)
        self.timeout_seconds = check_seconds(timeout_seconds, "timeout_seconds", owner)
        if task_runner is not None and not isinstance(task_runner, TaskRunner):
            raise ConfigurationError(
                f"task_runner on {owner} must be a task runner such as ThreadPoolTaskRunner(), "
                f"got {task_runner!r}."
            )
        self.task_runner = task_runner or ThreadPoolTaskRunner()
        self.validate_parameters = validate_parameters
        self.persist_result = persist_result
        self.log_prints = log_prints
        self.tags = frozenset(tags or ())
        self.on_completion = check_hooks(on_completion, "on_completion", owner)
        self.on_failure = check_hooks(on_failure, "on_failure", owner)
        self.on_cancellation = check_hooks(on_cancellation, "on_cancellation", owner)
        self.on_crashed = check_hooks(on_crashed, "on_crashed", owner)
        self.on_running = check_hooks(on_running, "on_running", owner)
        self._options = dict(
            name=name,
            version=version,
            flow_run_name=flow_run_name,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            task_runner=task_runner,
            description=description,
            timeout_seconds=timeout_seconds,
            validate_parameters=validate_parameters,
            persist_result=persist_result,
            log_prints=log_prints,
            tags=tags,
            on_completion=on_completion,
            on_failure=on_failure,
            on_cancellation=on_cancellation,
            on_crashed=on_crashed,
            on_running=on_running,
        )
        self.is_async = engine.is_async_callable(fn)
        self._shape = CallShape(fn)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def render_run_name(self, parameters: dict[str, Any]) -> str:
        """The flow run's name: ``flow_run_name`` formatted, or a random ``adjective-animal``."""
        return render_run_name(self.flow_run_name, parameters, random_run_name())

    def to_call_args(self, parameters: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        """``(args, kwargs)`` for the wrapped function."""
        return self._shape.to_call(parameters)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow and return its value; with ``return_state=True``, its final State.

        A failed flow raises its original exception. An async flow returns an
        awaitable (in a notebook, ``await my_flow()``).
        """
        return_state = kwargs.pop("return_state", False)
        parameters = self._shape.bind(args, kwargs, f"flow '{self.name}'")
        if self.is_async:
            return self._call_async(parameters, return_state)  # type: ignore[return-value]
        state = engine.run_flow(self, parameters)
        return state if return_state else state.result()  # type: ignore[return-value]

    async def _call_async(self, parameters: dict[str, Any], return_state: bool) -> Any:
        state = await engine.run_flow_async(self, parameters)
        return state if return_state else state.result()

    def with_options(self, **changes: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed."""
        unknown = set(changes) - set(self._options)
        if unknown:
            raise ConfigurationError(f"with_options got unknown options {sorted(unknown)}.")
        return Flow(self.fn, **{**self._options, **changes})

    def serve(self, name: str | None = None, **options: Any) -> Any:
        """Run this flow on a schedule (``cron=`` or ``interval=``), as Prefect's ``serve``.

        Defined in a notebook, the saved notebook is deployed instead (see
        :mod:`kernelflow.deployments.from_code`); inside a deployment run it is skipped.
        """
        from kernelflow.deployments.from_code import serve_flow

        return serve_flow(self, name, **options)

    def deploy(self, name: str | None = None, **options: Any) -> Any:
        """Deploy the notebook that defines this flow (``kernelflow deploy`` options)."""
        from kernelflow.deployments.from_code import deploy_flow

        return deploy_flow(self, name, **options)

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    version: str | None = None,
    flow_run_name: str | Callable[[], str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: float | datetime.timedelta | None = None,
    task_runner: TaskRunner | None = None,
    description: str | None = None,
    timeout_seconds: float | datetime.timedelta | None = None,
    validate_parameters: bool = True,
    persist_result: bool | None = None,
    log_prints: bool | None = None,
    tags: Iterable[str] | None = None,
    on_completion: list[Callable] | None = None,
    on_failure: list[Callable] | None = None,
    on_cancellation: list[Callable] | None = None,
    on_crashed: list[Callable] | None = None,
    on_running: list[Callable] | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Any = None, **options: Any) -> Any:
    """Make a function a flow, bare (``@flow``) or with options (``@flow(retries=1)``).

    Parameters
    ----------
    name, version, description, tags:
        How the flow is shown and found (the default name is the function's,
        with ``_`` as ``-``, as in Prefect).
    flow_run_name:
        A format string over the parameters, or a callable.
    retries, retry_delay_seconds:
        Run the whole flow again after a failure.
    timeout_seconds:
        A flow run longer than this ends TimedOut.
    task_runner:
        Where ``.submit()`` runs tasks; a :class:`ThreadPoolTaskRunner` by default.
    log_prints:
        Send ``print`` output to the run's logger (inherited by its tasks).
    on_completion, on_failure, on_cancellation, on_crashed, on_running:
        Hooks called as ``hook(flow, flow_run, state)``.
    """
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)
