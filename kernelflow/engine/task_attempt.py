"""One task run's decisions, shared by its sync and async drivers.

:class:`TaskAttempt` decides everything about a task run that does not
depend on how its function is called: the cache key and a cache hit, each
try's state, whether and when to retry, persisting the result, the
transaction, the hooks. The drivers (:mod:`kernelflow.engine.task_run`) only
call the function, sleep and wait.
"""

from __future__ import annotations

import contextvars
import functools
import random
import time
from typing import TYPE_CHECKING, Any

from kernelflow import context, transactions
from kernelflow.engine.lifecycle import enter_try, exception_to_state, record_interrupted
from kernelflow.engine.transitions import _call_hooks, _finished_log, _seconds_text, set_state
from kernelflow.errors import (
    ConfigurationError,
    HashingError,
    KernelflowError,
    ResultSerializationError,
    TaskRunTimeoutError,
)
from kernelflow.logs import enable_print_capture, run_logger
from kernelflow.runs import TaskRun
from kernelflow.states import (
    AwaitingRetry,
    Cached,
    Completed,
    Failed,
    State,
    StoredResult,
    TimedOut,
)
from kernelflow.store.events import inputs_known
from kernelflow.store.journal import current_journal

if TYPE_CHECKING:
    from kernelflow._protocols import TaskLike

__all__ = ["TaskAttempt", "render_result_storage_key"]


class TaskAttempt:
    """The decisions of one task run, shared by the sync and async drivers."""

    __slots__ = (
        "ctx",
        "events",
        "flow_ctx",
        "immediate_retry",
        "key",
        "persist",
        "record",
        "result_name",
        "task",
        "task_run",
        "token",
    )

    def __init__(
        self,
        task: TaskLike,
        task_run: TaskRun,
        parameters: dict[str, Any],
        flow_ctx: context.FlowRunContext | None,
    ) -> None:
        log_prints = task.log_prints
        if log_prints is None:
            log_prints = flow_ctx.log_prints if flow_ctx is not None else False
        if log_prints:
            enable_print_capture()
        self.task = task
        self.task_run = task_run
        self.flow_ctx = flow_ctx
        self.ctx = context.TaskRunContext(task, task_run, parameters, log_prints)
        self.key: str | None = None
        #: The rendered result_storage_key: the result's name under results/.
        self.result_name: str | None = None
        # Whether the result is persisted: the task's persist_result, else its
        # flow's (Prefect's should_persist_result).
        persist = task.persist_result
        if persist is None and flow_ctx is not None and flow_ctx.flow is not None:
            persist = flow_ctx.flow.persist_result
        # A value not kept in memory must be kept in the store.
        self.persist = bool(persist) or not task.cache_result_in_memory
        #: (path, checksum, format) of the result file this run wrote, if any.
        self.record: tuple[str, str, str] | None = None
        self.token: contextvars.Token | None = None
        #: Whether the next try follows a retry with no delay (it starts "Retrying").
        self.immediate_retry = False
        # Events (inputs, cache_hit) journaled with the next state, in one write.
        self.events: list[Any] = []
        # Inside a transaction (a transaction() block, or the run of a task calling this
        # one) the run has its own, a child of it. Elsewhere it has none until one is
        # needed (hooks, get_transaction()), so a plain run pays nothing for them.
        parent = transactions.get_transaction()
        if parent is not None:
            transactions.task_transaction(self.ctx, parent)

    def enter(self) -> None:
        """Make this task run the current one for code it calls."""
        self.token = context.task_context.set(self.ctx)
        if self.ctx.transaction is not None:
            self.ctx.transaction._activate()

    def exit(self) -> None:
        """Restore the previous task context; journal any event still held."""
        if self.events:
            current_journal().write_many(self._take_events())
        if self.ctx.transaction is not None:
            self.ctx.transaction._deactivate()
        if self.token is not None:
            context.task_context.reset(self.token)
            self.token = None

    def _take_events(self) -> list[dict]:
        events, self.events = self.events, []
        return events

    def cache_policy(self) -> Any:
        """The policy this run keys on: the task's, or DEFAULT when its flow persists results."""
        task = self.task
        if task.cache_policy is None and getattr(task, "caches_by_default", False) and self.persist:
            from kernelflow.cache import DEFAULT

            return DEFAULT
        return task.cache_policy

    def cached_state(self) -> State | None:
        """Compute the cache key; on a hit, the Cached state to finish with."""
        task = self.task
        template = getattr(task, "result_storage_key", None)
        if template is not None and task.persist_result:
            return self._stored_under_key(template)
        policy = self.cache_policy()
        if policy is None:
            return None
        from kernelflow.cache import compute_cache_key

        hashes: dict[str, str] = {}
        try:
            self.key = compute_cache_key(policy, self.ctx, hashes)
        except (HashingError, KernelflowError) as exc:
            if not (isinstance(exc, HashingError) and getattr(task, "caches_by_default", False)):
                return Failed(message=str(exc), data=exc)
            # Caching nobody asked for (DEFAULT, from persisted results) must not fail
            # the task: as in Prefect, it runs without a cache key.
            run_logger("task", self.task_run).warning(
                "No cache key (%s); the task runs without caching", exc
            )
            self.key = None
            return None
        self.task_run.cache_key = self.key
        if self.ctx.transaction is not None:
            self.ctx.transaction.key = self.key
        if hashes or self.key is not None:
            # The key is known only now (inputs resolved), after the task_run
            # event: this event carries it to task_runs.cache_key.
            self.events.append(
                inputs_known(run_id=self.task_run.id, cache_key=self.key, inputs=hashes)
            )
        if self.key is None or task.refresh_cache:
            return None
        from kernelflow.store import cache_index

        hit = cache_index.lookup(
            self.key,
            task_run_id=self.task_run.id,
            events=self.events,
            refuse=policy.refuse,
        )
        if hit is None:
            return None
        return Cached(data=hit.value)

    def _stored_under_key(self, template: str) -> State | None:
        """``result_storage_key``: the rendered key names the result and is its cache key.

        As in Prefect (``compute_transaction_key``), a result already stored
        under the key is reused, unless ``refresh_cache`` or ``NO_CACHE``.
        """
        task = self.task
        try:
            self.result_name = render_result_storage_key(template, self.ctx)
        except ConfigurationError as exc:
            return Failed(message=str(exc), data=exc)
        self.key = f"result_storage_key:{self.result_name}"
        self.task_run.cache_key = self.key
        if self.ctx.transaction is not None:
            self.ctx.transaction.key = self.key
        self.events.append(inputs_known(run_id=self.task_run.id, cache_key=self.key, inputs={}))
        from kernelflow.cache import NO_CACHE
        from kernelflow.store import cache_index

        if task.refresh_cache or task.cache_policy is NO_CACHE:
            return None
        hit = cache_index.lookup(self.key, task_run_id=self.task_run.id, events=self.events)
        if hit is None:
            return None
        return Cached(data=hit.value)

    def start_try(self) -> None:
        """Enter Running (first try) or Retrying (later tries)."""
        run = self.task_run
        # As Prefect: a retry that starts at once is "Retrying", one after a delay "Running".
        retrying = run.run_count >= 1 and self.immediate_retry
        events = self.events
        if events:
            self.events = []
        state = enter_try("task", run, run.run_count + 1, retrying, before=events or None)
        if self.task.on_running_hooks:
            _call_hooks(self.task.on_running_hooks, self.task, run, state, "task")

    def outcome(
        self, value: Any = None, error: BaseException | None = None, timed_out: bool = False
    ) -> State:
        """The state a try ended in."""
        # A State the function returned becomes the run's state, and is what calling
        # the task returns (Prefect's task engine keeps it as the return value).
        self.task_run.returned_state = error is None and not timed_out and isinstance(value, State)
        if timed_out:
            seconds = self.task.timeout_seconds
            exc = TaskRunTimeoutError(f"Task run exceeded timeout of {seconds} second(s)")
            return TimedOut(message=str(exc), data=exc)
        if error is not None:
            return exception_to_state(error, "Task run encountered an exception")
        if isinstance(value, State):
            return value
        return Completed(data=value)

    def retry_delay(self, state: State) -> float | None:
        """Seconds to wait before the next try, or None when no try is left.

        A returned ``Failed`` state is retried like a raised exception, as in Prefect.
        """
        task, run = self.task, self.task_run
        if not state.is_failed():
            return None
        # Prefect's lines: "Task run failed with exception: ValueError('x') - Retry 1/3 will
        # start 2 second(s) from now", then "... - Retries are exhausted" at ERROR.
        failure = ("state", state) if run.returned_state else ("exception", state.data)
        if run.run_count > task.retries:
            self._roll_back()
            exhausted = " - Retries are exhausted" if task.retries else ""
            run_logger("task", run).error(
                "Task run failed with %s: %r%s", *failure, exhausted, exc_info=_exc_info(state)
            )
            return self._not_retried(state)
        if task.retry_condition_fn is not None:
            try:
                if not task.retry_condition_fn(task, run, state):
                    return self._not_retried(state)
            except Exception:
                run_logger("task", run).exception("retry_condition_fn failed; not retrying")
                return self._not_retried(state)
        delay = task.delay_for_retry(run.run_count)
        if task.retry_jitter_factor:
            delay = max(0.0, delay * (1 + random.uniform(-1, 1) * task.retry_jitter_factor))
        set_state("task", run, AwaitingRetry(message=state.message, data=state.data))
        when = f"{_seconds_text(round(delay, 3))} second(s) from now" if delay else "immediately"
        run_logger("task", run).info(
            "Task run failed with %s: %r - Retry %s/%s will start %s",
            *failure,
            run.run_count,
            task.retries,
            when,
            extra={"retry_delay": delay},  # widgets/_logs.py: the live view's countdown
        )
        self.immediate_retry = not delay
        return delay

    def _not_retried(self, state: State) -> float | None:
        """No retry (None, as :meth:`retry_delay` answers): roll back, say so if timed out."""
        self._roll_back()
        if state.name == "TimedOut":  # Prefect says so once more, in its own words
            run_logger("task", self.task_run).error("%s", state.message)
        return None

    def _roll_back(self) -> None:
        """Roll the failed run's transaction back now: before its failure is logged, as in
        Prefect, where the exception leaves the transaction before the engine sees it."""
        txn = self.ctx.transaction
        if txn is not None and not txn._closed:
            txn._close(failed=True)

    def finish(self, state: State) -> State:
        """Persist the result if asked, enter the final state, settle the transaction, call hooks.

        In a transaction the result is written now, its cache entry when the
        transaction commits (:meth:`_settle`). A run that did not complete
        rolls its transaction back, and with it the enclosing ones, before its
        state is written, as in Prefect.
        """
        task, run = self.task, self.task_run
        # A run's context holds only transactions.task_transaction's Transaction objects.
        txn: transactions.Transaction | None = self.ctx.transaction  # type: ignore[assignment]
        if txn is None and (task.on_commit_hooks or task.on_rollback_hooks):
            txn = transactions.task_transaction(self.ctx)  # the run's own, for its hooks
        result_path = None
        staged = None
        completed = state.is_completed()
        # Nothing to persist (the default): not even a call to find that out.
        if (
            completed
            and state.name != "Cached"
            and (txn is not None or self.key is not None or self.persist)
        ):
            try:
                if txn is None:
                    result_path = self._persist(state)
                else:
                    result_path, staged = self._persist_staged(state)
            except (ResultSerializationError, ConfigurationError) as exc:
                state = Failed(message=str(exc), data=exc)
                completed = False
        if txn is not None and not completed and not txn._closed:
            txn._close(failed=True)
        events = self.events
        if events:
            self.events = []
        set_state("task", run, state, result=result_path, before=events or None)
        if txn is not None and completed:
            self._settle(txn, state, result_path, staged)
        if completed:
            if task.on_completion_hooks:
                _call_hooks(task.on_completion_hooks, task, run, state, "task")
        elif task.on_failure_hooks and state.is_failed():
            _call_hooks(task.on_failure_hooks, task, run, state, "task")
        _finished_log("task", run, state)  # after the hooks, as Prefect's console shows
        if completed and self.record is not None and not task.cache_result_in_memory:
            state.data = StoredResult(*self.record)  # the store has it: let go of the value
        return state

    def _persist(self, state: State) -> str | None:
        task = self.task
        if task.persist_result is False:
            return None
        if self.key is not None:
            from kernelflow.store import cache_index

            run = self.task_run
            entry = cache_index.store(
                self.key,
                state.data,
                task_name=task.name,
                expires=self._expires(),
                task_run_id=run.id,
                duration=time.time() - (run.start_time or time.time()),
                result_name=self.result_name,
            )
            self.record = (entry.result, entry.checksum, entry.format)
            return entry.result
        if self.persist:
            from kernelflow.results import write_result

            written = write_result(state.data, task_name=task.name)
            self.record = (written.path, written.checksum, written.format)
            return written.path
        return None

    def _expires(self) -> float | None:
        expiration = self.task.cache_expiration
        return None if expiration is None else time.time() + expiration

    def _persist_staged(self, state: State) -> tuple[str | None, transactions.StagedEntry | None]:
        """As :meth:`_persist`, but the cache entry is returned, to be written at commit."""
        task = self.task
        if task.persist_result is False or (self.key is None and not self.persist):
            return None, None
        from kernelflow.results import write_result

        record = write_result(state.data, task_name=task.name, name=self.result_name)
        self.record = (record.path, record.checksum, record.format)
        if self.key is None:
            return record.path, None
        run = self.task_run
        duration = time.time() - (run.start_time or time.time())
        entry = transactions.StagedEntry(
            self.key, record, task.name, self._expires(), run.id, duration
        )
        return record.path, entry

    def _settle(
        self,
        txn: transactions.Transaction,
        state: State,
        result_path: str | None,
        staged: transactions.StagedEntry | None,
    ) -> None:
        """Stage the completed run's result and hooks in its transaction, then end it.

        Ending commits at once outside any transaction (or with ``CommitMode.EAGER``);
        inside one, the commit waits for the enclosing transaction's.
        """
        task = self.task
        if state.name == "Cached":
            txn._began_committed()  # its record exists: nothing to stage, no hooks
        else:
            rolled_back = functools.partial(_mark_rolled_back, self.task_run, result_path)
            rolled_back.log_on_run = False  # type: ignore[attr-defined]  # Prefect's marker
            txn._stage_entry(
                state.data,
                staged,
                [rolled_back, *task.on_rollback_hooks],
                list(task.on_commit_hooks),
            )
        txn._close(failed=False)

    def crash(self, exc: BaseException) -> None:
        """Record a run interrupted by ``exc``: Cancelled, or Crashed (see interrupted_state)."""
        txn = self.ctx.transaction
        if txn is not None:
            txn._abort()
        record_interrupted("task", self.task_run, exc)


def _mark_rolled_back(run: TaskRun, result: str | None, txn: transactions.Transaction) -> None:
    """The rollback hook the engine gives every completed run (Prefect's ``handle_rollback``).

    Registered first, so it runs after the task's own hooks: the run becomes
    ``RolledBack`` (type COMPLETED), keeping the value that calls and futures
    already returned.
    """
    data = run.state.data if run.state is not None else None
    message = "Task rolled back as part of transaction"
    set_state("task", run, Completed(name="RolledBack", message=message, data=data), result=result)


def _exc_info(state: State) -> BaseException | bool:
    """The exception a failed state carries, for a log line's traceback (False: none)."""
    return state.data if isinstance(state.data, BaseException) else False


def render_result_storage_key(template: str, ctx: context.TaskRunContext) -> str:
    """A task's ``result_storage_key`` formatted as Prefect formats it, checked.

    The fields are ``parameters`` (the call's arguments) and the runtime
    modules ``flow_run``, ``task_run`` and ``deployment``, e.g.
    ``"{flow_run.name}/sales-{parameters[day]}"``.

    Raises
    ------
    ConfigurationError
        The template names a field that is not there, or the result leaves ``results/``.
    """
    from kernelflow import runtime
    from kernelflow.results import check_result_name

    fields = {
        "flow_run": runtime.flow_run,
        "task_run": runtime.task_run,
        "deployment": runtime.deployment,
    }
    try:
        name = template.format(**fields, parameters=ctx.parameters)
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        raise ConfigurationError(
            f"result_storage_key {template!r} cannot be formatted ({type(exc).__name__}: "
            f"{exc}); it can use parameters[name] (one of {sorted(ctx.parameters)}), "
            "flow_run, task_run and deployment."
        ) from None
    return check_result_name(name, template)
