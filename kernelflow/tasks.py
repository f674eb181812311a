"""``@task``: a function whose calls are tracked, retried, timed out and cached.

Example
-------
>>> from kernelflow import flow, task
>>> @task(retries=2, retry_delay_seconds=1)
... def double(x: int) -> int:
...     return 2 * x
>>> @flow
... def pipeline() -> int:
...     return double(21)
>>> pipeline()
42
"""

from __future__ import annotations

import datetime
import functools
import logging
from collections.abc import Callable, Iterable
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from kernelflow import context
from kernelflow._sync import is_async_callable
from kernelflow.cache import DEFAULT, NO_CACHE, CacheKeyFnPolicy, CachePolicy
from kernelflow.engine.task_run import create_task_run, run_task_any, run_task_async
from kernelflow.errors import CachePolicyError, ConfigurationError
from kernelflow.futures import PrefectFutureList, TaskRunFuture
from kernelflow.options import (
    BindsAsMethod,
    CallShape,
    check_delays,
    check_flag,
    check_hooks,
    check_result_storage_key,
    check_retries,
    check_seconds,
    exponential_backoff,
    method_kind,
    render_run_name,
)
from kernelflow.utilities.annotations import unmapped

__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]

P = ParamSpec("P")
R = TypeVar("R")
#: A hook: the decorator methods return it unchanged.
H = TypeVar("H", bound=Callable[..., Any])
_NOT_SET: Any = object()
_log = logging.getLogger("kernelflow.tasks")


class Task(BindsAsMethod, Generic[P, R]):
    """A function whose calls are task runs. Made by :func:`task`; see it for the options.

    Call it to run it (inside a flow or not), ``.submit()`` to run it on the
    flow's task runner and get a future, ``.map()`` to submit one run per
    item, ``.fn`` to call the plain function.

    State hooks are registered with the options or, as in Prefect, with the
    decorator methods :meth:`on_completion`, :meth:`on_failure` and
    :meth:`on_running`; the lists are ``on_completion_hooks`` and so on.
    Transaction hooks likewise: ``on_commit`` / ``on_rollback`` (see
    :mod:`kernelflow.transactions`). A task
    defined on a class (an instance method, ``@classmethod`` or
    ``@staticmethod``) binds like a function: ``obj.method(x)`` passes ``obj``.
    """

    _what = "task"

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        cache_policy: CachePolicy | None = _NOT_SET,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_expiration: datetime.timedelta | float | None = None,
        task_run_name: str | Callable[[], str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: Any = None,
        retry_jitter_factor: float | None = None,
        persist_result: bool | None = None,
        cache_result_in_memory: bool = True,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        refresh_cache: bool | None = None,
        on_completion: list[Callable[..., Any]] | None = None,
        on_failure: list[Callable[..., Any]] | None = None,
        on_running: list[Callable[..., Any]] | None = None,
        retry_condition_fn: Callable[..., bool] | None = None,
        result_storage_key: str | None = None,
        on_commit: list[Callable[..., Any]] | None = None,
        on_rollback: list[Callable[..., Any]] | None = None,
    ) -> None:
        fn, self._method_kind = method_kind(fn)
        if not callable(fn):
            raise ConfigurationError(f"@task needs a function, got {fn!r}.")
        self.fn = fn
        #: The instance or class a method is bound to (see ``__get__``), else None.
        self._bound: Any = None
        self.name = name if name else getattr(fn, "__name__", type(fn).__name__)
        owner = f"task '{self.name}'"
        self.description = description or fn.__doc__
        self.tags = frozenset(tags or ())
        self.version = version
        self.task_key = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', self.name)}"
        self.retries = check_retries(retries, owner)
        self.retry_delay_seconds = retry_delay_seconds
        self.delay_for_retry = check_delays(retry_delay_seconds, self.retries, owner)
        if retry_jitter_factor is not None and (
            isinstance(retry_jitter_factor, bool)
            or not isinstance(retry_jitter_factor, (int, float))
            or retry_jitter_factor < 0
        ):
            raise ConfigurationError(
                f"retry_jitter_factor on {owner} must be a number >= 0 (0.5 = up to ±50% of "
                f"each delay), got {retry_jitter_factor!r}."
            )
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        self.timeout_seconds = check_seconds(timeout_seconds, "timeout_seconds", owner)
        self.cache_expiration = check_seconds(cache_expiration, "cache_expiration", owner)
        self.persist_result = persist_result
        self.cache_result_in_memory = check_flag(
            cache_result_in_memory, "cache_result_in_memory", owner
        )
        self.refresh_cache = bool(refresh_cache)
        self.log_prints = log_prints
        self.task_run_name = task_run_name
        self.result_storage_key = check_result_storage_key(result_storage_key, owner)
        self.on_completion_hooks = check_hooks(on_completion, "on_completion", owner)
        self.on_failure_hooks = check_hooks(on_failure, "on_failure", owner)
        self.on_running_hooks = check_hooks(on_running, "on_running", owner)
        # Called as hook(transaction) when the run's transaction commits or rolls back.
        self.on_commit_hooks = check_hooks(on_commit, "on_commit", owner)
        self.on_rollback_hooks = check_hooks(on_rollback, "on_rollback", owner)
        self._options = dict(
            name=name,
            description=description,
            tags=tags,
            version=version,
            cache_policy=cache_policy,
            cache_key_fn=cache_key_fn,
            cache_expiration=cache_expiration,
            task_run_name=task_run_name,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            retry_jitter_factor=retry_jitter_factor,
            persist_result=persist_result,
            cache_result_in_memory=cache_result_in_memory,
            timeout_seconds=timeout_seconds,
            log_prints=log_prints,
            refresh_cache=refresh_cache,
            on_completion=on_completion,
            on_failure=on_failure,
            on_running=on_running,
            retry_condition_fn=retry_condition_fn,
            result_storage_key=result_storage_key,
            on_commit=on_commit,
            on_rollback=on_rollback,
        )
        self.cache_policy = self._resolve_cache_policy(cache_policy, cache_key_fn, owner)
        self.is_async = is_async_callable(fn)
        self._shape = CallShape(fn)
        functools.update_wrapper(self, fn)

    def _resolve_cache_policy(self, policy: Any, key_fn: Any, owner: str) -> CachePolicy | None:
        """Prefect's rules (``Task.__init__`` in prefect/tasks.py) for caching and persistence.

        ``cache_key_fn`` wins over ``cache_policy``. Asking for caching (a policy
        other than NO_CACHE, a key function or ``result_storage_key``) turns
        ``persist_result`` on. With results persisted and no policy given, the
        policy is ``DEFAULT`` (INPUTS + TASK_SOURCE + RUN_ID: reused within one
        flow run); a task that sets neither inherits its flow's
        ``persist_result`` at run time (:attr:`caches_by_default`). With
        ``result_storage_key``, the rendered key is the cache key.
        """
        #: True when no cache option was given: the task caches with DEFAULT when its
        #: results are persisted (its own persist_result, else its flow's), and a key
        #: that cannot be computed then only turns caching off, as in Prefect.
        self.caches_by_default = False
        if key_fn is not None:
            if not callable(key_fn):
                raise CachePolicyError(f"cache_key_fn on {owner} must be callable, got {key_fn!r}.")
            if policy is not _NOT_SET and policy is not None:
                _log.warning(
                    "Both `cache_policy` and `cache_key_fn` are set on task %s. "
                    "`cache_key_fn` will be used.",
                    self,
                )
            policy = CacheKeyFnPolicy(key_fn)
        if policy is not _NOT_SET and policy is not None and not isinstance(policy, CachePolicy):
            raise CachePolicyError(
                f"cache_policy on {owner} must be a cache policy such as INPUTS or "
                f"INPUTS + TASK_SOURCE, got {policy!r}."
            )
        off = policy is None or policy is NO_CACHE
        wants_cache = policy is not _NOT_SET and not off
        if self.persist_result is None and (wants_cache or self.result_storage_key is not None):
            self.persist_result = True
        if self.persist_result is False:
            if wants_cache:
                raise CachePolicyError(
                    f"{owner} asks for caching with persist_result=False; caching needs the "
                    "result stored, so drop one of the two."
                )
            return None
        if self.result_storage_key is not None:
            # The rendered key is the cache key (the engine looks it up), unless NO_CACHE.
            return NO_CACHE if policy is NO_CACHE else None
        if policy is _NOT_SET:
            self.caches_by_default = True
            return DEFAULT if self.persist_result else None
        return None if off else policy

    # --- calling ---------------------------------------------------------
    def render_run_name(self, parameters: dict[str, Any], index: int) -> str:
        """The task run's name: ``task_run_name`` formatted, or ``<name>-<n>``."""
        if self.task_run_name is None:
            return f"{self.name}-{index}"
        return render_run_name(self.task_run_name, parameters, f"{self.name}-{index}")

    def to_call_args(self, parameters: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` for the wrapped function."""
        shape = self._shape  # CallShape.to_call's first case inline: one call fewer per try
        return ((), parameters) if shape.simple else shape.to_call(parameters)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the task now and return its value (``return_state=True``: its State).

        Inside an async flow, calling an async task returns an awaitable.
        """
        return_state = bool(kwargs.pop("return_state", False)) if kwargs else False
        wait_for = kwargs.pop("wait_for", None) if kwargs else None
        parameters = self._bind(args, kwargs)
        flow_ctx = context.current_flow_context()
        # A coroutine (for an async task) or the State with return_state=True stands
        # for R here, which a ParamSpec-typed call cannot express: hence the casts.
        if self.is_async and context.caller_awaits(flow_ctx):
            return cast(R, self._call_async(parameters, wait_for, flow_ctx, return_state))
        # A sync call runs at once in this thread: its creation is journaled with its start.
        task_run = create_task_run(self, parameters, flow_ctx, hold=not self.is_async)
        state = run_task_any(self, task_run, parameters, wait_for, flow_ctx)
        return cast(R, state) if return_state else _call_value(task_run, state)

    async def _call_async(
        self,
        parameters: dict[str, Any],
        wait_for: Any,
        flow_ctx: context.FlowRunContext | None,
        return_state: bool,
    ) -> Any:
        task_run = create_task_run(self, parameters, flow_ctx)
        state = await run_task_async(self, task_run, parameters, wait_for, flow_ctx)
        return state if return_state else _call_value(task_run, state)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> TaskRunFuture[R]:
        """Run the task on the flow's task runner; return a future at once."""
        wait_for = kwargs.pop("wait_for", None)
        kwargs.pop("return_state", None)
        parameters = self._bind(args, kwargs)
        return self._submit(parameters, wait_for, _require_flow(self.name, "submit"))

    def _submit(
        self, parameters: dict[str, Any], wait_for: Any, flow_ctx: context.FlowRunContext
    ) -> TaskRunFuture[R]:
        task_run = create_task_run(self, parameters, flow_ctx)
        runner = flow_ctx.get_task_runner()
        inner = runner.submit(run_task_any, self, task_run, parameters, wait_for, flow_ctx, runner)
        future: TaskRunFuture[R] = TaskRunFuture(task_run, inner)
        flow_ctx.track(future)
        return future

    def map(self, *args: Any, wait_for: Any = None, **kwargs: Any) -> PrefectFutureList[R]:
        """Submit one run per item of the iterable arguments (``unmapped(x)`` stays whole)."""
        flow_ctx = _require_flow(self.name, "map")
        parameters = self._bind(args, kwargs)
        mapped: dict[str, list[Any]] = {}
        static: dict[str, Any] = {}
        for name, value in parameters.items():
            if self._bound is not None and value is self._bound:
                static[name] = value  # the bound instance or class is never mapped over
            elif isinstance(value, unmapped):
                static[name] = value.value
            elif isinstance(value, Iterable) and not isinstance(value, (str, bytes, dict)):
                mapped[name] = list(value)
            else:
                static[name] = value
        if not mapped:
            raise ConfigurationError(
                f"{self.name}.map() needs at least one iterable argument; wrap whole values in "
                "unmapped(...)."
            )
        lengths = {name: len(items) for name, items in mapped.items()}
        if len(set(lengths.values())) > 1:
            raise ConfigurationError(
                f"{self.name}.map() got iterables of different lengths {lengths}; make them equal "
                "or wrap the whole ones in unmapped(...)."
            )
        count = next(iter(lengths.values()))
        futures: PrefectFutureList[R] = PrefectFutureList()
        for i in range(count):
            call = dict(static)
            for name, items in mapped.items():
                call[name] = items[i]
            futures.append(self._submit(call, wait_for, flow_ctx))
        return futures

    def with_options(self, **changes: Any) -> Task[P, R]:
        """A copy of this task with some options changed.

        Hooks registered with the decorator methods are kept unless the change
        gives new ones, as in Prefect.
        """
        unknown = set(changes) - set(self._options)
        if unknown:
            raise ConfigurationError(f"with_options got unknown options {sorted(unknown)}.")
        hooks = {
            "on_completion": list(self.on_completion_hooks),
            "on_failure": list(self.on_failure_hooks),
            "on_running": list(self.on_running_hooks),
            "on_commit": list(self.on_commit_hooks),
            "on_rollback": list(self.on_rollback_hooks),
        }
        new = Task(self.fn, **{**self._options, **hooks, **changes})
        new._method_kind, new._bound = self._method_kind, self._bound
        return new

    # --- hooks, decorator form (Prefect's Task.on_completion and so on) ---
    def on_completion(self, fn: H) -> H:
        """Register ``fn(task, task_run, state)`` to run when a run completes; returns ``fn``.

        Example
        -------
        >>> @my_task.on_completion  # doctest: +SKIP
        ... def notify(task, task_run, state): ...
        """
        self.on_completion_hooks.append(_hook(fn, "on_completion", self))
        return fn

    def on_failure(self, fn: H) -> H:
        """Register ``fn(task, task_run, state)`` to run when a run fails; returns ``fn``."""
        self.on_failure_hooks.append(_hook(fn, "on_failure", self))
        return fn

    def on_running(self, fn: H) -> H:
        """Register ``fn(task, task_run, state)`` to run when a run starts; returns ``fn``."""
        self.on_running_hooks.append(_hook(fn, "on_running", self))
        return fn

    def on_commit(self, fn: H) -> H:
        """Register ``fn(transaction)`` to run when a run's transaction commits; returns ``fn``.

        A run outside any ``transaction()`` block commits when it completes; inside
        one, when the block does. See :mod:`kernelflow.transactions`.

        Example
        -------
        >>> @write_file.on_commit  # doctest: +SKIP
        ... def announce(txn): print("written for good")
        """
        self.on_commit_hooks.append(_hook(fn, "on_commit", self))
        return fn

    def on_rollback(self, fn: H) -> H:
        """Register ``fn(transaction)`` to run when a completed run is rolled back; returns ``fn``.

        A run rolls back when a later task in its ``transaction()`` block fails
        (or the block raises); hooks run newest first and read values set with
        ``txn.set`` through ``txn.get``.

        Example
        -------
        >>> @write_file.on_rollback  # doctest: +SKIP
        ... def remove(txn): os.unlink(txn.get("path"))
        """
        self.on_rollback_hooks.append(_hook(fn, "on_rollback", self))
        return fn

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


def _hook(fn: Any, option: str, task: Task[..., Any]) -> Callable[..., Any]:
    return check_hooks(fn, option, f"task '{task.name}'")[0]


def _call_value(task_run: Any, state: Any) -> Any:
    """What calling a task returns: its value, or, as in Prefect, the State its function returned.

    Prefect's task engine keeps a returned State as the call's return value
    (``SyncTaskRunEngine.result``), so a task that returns ``Failed(...)`` does
    not raise at the call; ``.result()`` of that state raises.
    """
    if task_run.returned_state:
        return state
    return state.result()


def _require_flow(name: str, method: str) -> context.FlowRunContext:
    flow_ctx = context.current_flow_context()
    if flow_ctx is None:
        raise context.MissingContextError(
            f"{name}.{method}() needs a flow run: call it inside a @flow (or in a notebook "
            "with %load_ext kernelflow, where the session is a flow run)."
        )
    return flow_ctx


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    version: str | None = None,
    cache_policy: CachePolicy | None = ...,
    cache_key_fn: Callable[..., str | None] | None = None,
    cache_expiration: datetime.timedelta | float | None = None,
    task_run_name: str | Callable[[], str] | None = None,
    retries: int | None = None,
    retry_delay_seconds: Any = None,
    retry_jitter_factor: float | None = None,
    persist_result: bool | None = None,
    cache_result_in_memory: bool = True,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    refresh_cache: bool | None = None,
    on_completion: list[Callable[..., Any]] | None = None,
    on_failure: list[Callable[..., Any]] | None = None,
    on_running: list[Callable[..., Any]] | None = None,
    retry_condition_fn: Callable[..., bool] | None = None,
    result_storage_key: str | None = None,
    on_commit: list[Callable[..., Any]] | None = None,
    on_rollback: list[Callable[..., Any]] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Any = None, **options: Any) -> Any:
    """Make a function a task, bare (``@task``) or with options (``@task(retries=3)``).

    Parameters
    ----------
    name, description, tags, version:
        How the task is shown and found; ``tags`` also select concurrency limits.
    retries, retry_delay_seconds, retry_jitter_factor, retry_condition_fn:
        Retry a failed try up to ``retries`` times, waiting a number of
        seconds, a list (one per retry) or :func:`exponential_backoff`;
        ``retry_condition_fn(task, task_run, state)`` can veto a retry.
    timeout_seconds:
        A try longer than this ends TimedOut (see :mod:`kernelflow.timeouts`).
    cache_policy, cache_key_fn, cache_expiration, refresh_cache:
        Reuse a stored result of an equivalent earlier call. As in Prefect,
        caching needs persisted results: with ``persist_result=True`` (on the
        task or its flow) and no policy, the policy is ``DEFAULT`` (INPUTS +
        TASK_SOURCE + RUN_ID, reused within one flow run).
    persist_result:
        Keep the result in the result store (turned on by any cache option).
    cache_result_in_memory:
        False: keep a completed run's value only in the result store (it is
        written there); the run's state and futures read it back on each
        ``.result()``, so a large value does not stay in the process.
    result_storage_key:
        Name the persisted result ``results/<key>`` in the store, formatted with
        the parameters (``"sales-{parameters[day]}"``) and ``flow_run`` /
        ``task_run``; a result already stored under the key is reused (the key
        is the cache key). It must stay inside ``results/``.
    log_prints:
        Send ``print`` output to the run's logger and the store.
    task_run_name:
        A format string over the parameters, or a callable.
    on_completion, on_failure, on_running:
        Hooks called as ``hook(task, task_run, state)``.
    on_commit, on_rollback:
        Hooks called as ``hook(transaction)`` when the run's transaction commits
        or rolls back (see :mod:`kernelflow.transactions`).
    """
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str | None:
    """Prefect's cache key function: the task's source plus all its arguments."""
    from kernelflow.hashing import hash_bytes, hash_value, source_hash

    parts = [source_hash(context.task.fn)]
    for name in sorted(arguments):
        parts.append(f"{name}={hash_value(arguments[name], name=name)}")
    return hash_bytes(*parts)
