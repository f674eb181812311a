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
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

from kernelflow._sync import is_async_callable
from kernelflow.engine.flow_run import (
    run_flow,
    run_flow_async,
    run_generator_flow,
    run_generator_flow_async,
)
from kernelflow.errors import ConfigurationError
from kernelflow.options import (
    BindsAsMethod,
    CallShape,
    check_delays,
    check_flag,
    check_hooks,
    check_retries,
    check_seconds,
    method_kind,
    render_run_name,
)
from kernelflow.runners import TaskRunner, ThreadPoolTaskRunner
from kernelflow.runs import random_run_name

if TYPE_CHECKING:
    from kernelflow._validation import ParameterValidator

__all__ = ["Flow", "flow"]

P = ParamSpec("P")
R = TypeVar("R")
#: A state hook, ``fn(flow, flow_run, state)``: the decorator methods return it unchanged.
H = TypeVar("H", bound=Callable[..., Any])


class Flow(BindsAsMethod, Generic[P, R]):
    """A function whose calls are flow runs. Made by :func:`flow`; see it for the options.

    State hooks are registered with the options or, as in Prefect, with the
    decorator methods (:meth:`on_completion`, :meth:`on_failure`,
    :meth:`on_cancellation`, :meth:`on_crashed`, :meth:`on_running`); the lists
    are ``on_completion_hooks`` and so on. A flow defined on a class (an
    instance method, ``@classmethod`` or ``@staticmethod``) binds like a
    function. A generator function's flow yields its values as the run goes
    (Prefect's generator flows).
    """

    _what = "flow"

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
        cache_result_in_memory: bool = True,
        log_prints: bool | None = None,
        tags: Iterable[str] | None = None,
        on_completion: list[Callable[..., Any]] | None = None,
        on_failure: list[Callable[..., Any]] | None = None,
        on_cancellation: list[Callable[..., Any]] | None = None,
        on_crashed: list[Callable[..., Any]] | None = None,
        on_running: list[Callable[..., Any]] | None = None,
    ) -> None:
        fn, self._method_kind = method_kind(fn)
        if not callable(fn):
            raise ConfigurationError(f"@flow needs a function, got {fn!r}.")
        self.fn = fn
        #: The instance or class a method is bound to (see ``__get__``), else None.
        self._bound: Any = None
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
        #: Prefect's attribute name; ``validate_parameters`` is the method.
        self.should_validate_parameters = bool(validate_parameters)
        self.persist_result = persist_result
        self.cache_result_in_memory = check_flag(
            cache_result_in_memory, "cache_result_in_memory", owner
        )
        self.log_prints = log_prints
        self.tags = frozenset(tags or ())
        self.on_completion_hooks = check_hooks(on_completion, "on_completion", owner)
        self.on_failure_hooks = check_hooks(on_failure, "on_failure", owner)
        self.on_cancellation_hooks = check_hooks(on_cancellation, "on_cancellation", owner)
        self.on_crashed_hooks = check_hooks(on_crashed, "on_crashed", owner)
        self.on_running_hooks = check_hooks(on_running, "on_running", owner)
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
            cache_result_in_memory=cache_result_in_memory,
            log_prints=log_prints,
            tags=tags,
            on_completion=on_completion,
            on_failure=on_failure,
            on_cancellation=on_cancellation,
            on_crashed=on_crashed,
            on_running=on_running,
        )
        self.is_async = is_async_callable(fn)
        #: "sync" or "async" for a generator function's flow, else None.
        self.generator = (
            "async"
            if inspect.isasyncgenfunction(fn)
            else "sync"
            if inspect.isgeneratorfunction(fn)
            else None
        )
        if self.generator is not None and timeout_seconds is not None:
            raise ConfigurationError(
                f"timeout_seconds on {owner} is not supported for a generator flow (its run "
                "lasts as long as its caller iterates); time the work inside it instead."
            )
        self._shape = CallShape(fn)
        self._validator: ParameterValidator | None = None
        if validate_parameters:
            from kernelflow._validation import ParameterValidator, annotated_parameters
            from kernelflow.futures import TaskRunFuture
            from kernelflow.states import State

            if annotated_parameters(self._shape.signature):
                # Futures and states given to a subflow are the engine's to resolve.
                self._validator = ParameterValidator(fn, owner, (TaskRunFuture, State))
        functools.update_wrapper(self, fn)

    def render_run_name(self, parameters: dict[str, Any]) -> str:
        """The flow run's name: ``flow_run_name`` formatted, or a random ``adjective-animal``."""
        return render_run_name(self.flow_run_name, parameters, random_run_name())

    def to_call_args(self, parameters: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` for the wrapped function."""
        return self._shape.to_call(parameters)

    def validate_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """``parameters`` checked and coerced against the annotations, as Prefect does.

        Only values given (not defaults) of annotated parameters are validated,
        with pydantic in lax mode; a flow made with ``validate_parameters=False``
        returns them unchanged.

        Raises
        ------
        ParameterTypeError
            A value does not fit its parameter's annotation.
        """
        if self._validator is None:
            return parameters
        return self._validator.validate(parameters)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow and return its value; with ``return_state=True``, its final State.

        A failed flow raises its original exception. An async flow returns an
        awaitable (in a notebook, ``await my_flow()``); a generator flow returns
        a generator of what its function yields.
        """
        return_state = bool(kwargs.pop("return_state", False))
        parameters = self._bind(args, kwargs)
        # What each branch returns is what calling the function returns (R: a generator,
        # a coroutine, a value), or with return_state=True the final State, which a
        # ParamSpec-typed call cannot express: hence the casts.
        if self.generator is not None:
            if return_state:
                raise ConfigurationError(
                    f"flow '{self.name}' is a generator flow: it yields values, so "
                    "return_state=True is not supported (as in Prefect)."
                )
            if self.generator == "async":
                return cast(R, run_generator_flow_async(self, parameters))
            return cast(R, run_generator_flow(self, parameters))
        if self.is_async:
            return cast(R, self._call_async(parameters, return_state))
        state = run_flow(self, parameters)
        return cast(R, state) if return_state else state.result()

    async def _call_async(self, parameters: dict[str, Any], return_state: bool) -> Any:
        state = await run_flow_async(self, parameters)
        return state if return_state else state.result()

    def with_options(self, **changes: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed.

        Hooks registered with the decorator methods are kept unless the change
        gives new ones, as in Prefect.
        """
        unknown = set(changes) - set(self._options)
        if unknown:
            raise ConfigurationError(f"with_options got unknown options {sorted(unknown)}.")
        hooks = {
            "on_completion": list(self.on_completion_hooks),
            "on_failure": list(self.on_failure_hooks),
            "on_cancellation": list(self.on_cancellation_hooks),
            "on_crashed": list(self.on_crashed_hooks),
            "on_running": list(self.on_running_hooks),
        }
        new = Flow(self.fn, **{**self._options, **hooks, **changes})
        new._method_kind, new._bound = self._method_kind, self._bound
        return new

    # --- hooks, decorator form (Prefect's Flow.on_completion and so on) ---
    def on_completion(self, fn: H) -> H:
        """Register ``fn(flow, flow_run, state)`` to run when a run completes; returns ``fn``.

        Example
        -------
        >>> @my_flow.on_completion  # doctest: +SKIP
        ... def notify(flow, flow_run, state): ...
        """
        self.on_completion_hooks.append(self._hook(fn, "on_completion"))
        return fn

    def on_failure(self, fn: H) -> H:
        """Register ``fn(flow, flow_run, state)`` to run when a run fails; returns ``fn``."""
        self.on_failure_hooks.append(self._hook(fn, "on_failure"))
        return fn

    def on_cancellation(self, fn: H) -> H:
        """Register ``fn(flow, flow_run, state)`` to run when a run is cancelled; returns ``fn``."""
        self.on_cancellation_hooks.append(self._hook(fn, "on_cancellation"))
        return fn

    def on_crashed(self, fn: H) -> H:
        """Register ``fn(flow, flow_run, state)`` to run when a run crashes; returns ``fn``."""
        self.on_crashed_hooks.append(self._hook(fn, "on_crashed"))
        return fn

    def on_running(self, fn: H) -> H:
        """Register ``fn(flow, flow_run, state)`` to run when a run starts; returns ``fn``."""
        self.on_running_hooks.append(self._hook(fn, "on_running"))
        return fn

    def _hook(self, fn: Any, option: str) -> Callable[..., Any]:
        return check_hooks(fn, option, f"flow '{self.name}'")[0]

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
    cache_result_in_memory: bool = True,
    log_prints: bool | None = None,
    tags: Iterable[str] | None = None,
    on_completion: list[Callable[..., Any]] | None = None,
    on_failure: list[Callable[..., Any]] | None = None,
    on_cancellation: list[Callable[..., Any]] | None = None,
    on_crashed: list[Callable[..., Any]] | None = None,
    on_running: list[Callable[..., Any]] | None = None,
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
    persist_result:
        Keep the results of the flow's tasks in the result store (and cache them).
    cache_result_in_memory:
        False: keep the flow run's return value only in the result store; its
        state's ``.result()`` reads it back.
    validate_parameters:
        Check and coerce the arguments of each call against the parameters'
        annotations with pydantic, as Prefect does (on by default); a value that
        does not fit fails the run with :class:`~kernelflow.errors.ParameterTypeError`.
    on_completion, on_failure, on_cancellation, on_crashed, on_running:
        Hooks called as ``hook(flow, flow_run, state)``; also registered with
        ``@my_flow.on_failure`` and so on.
    """
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)
