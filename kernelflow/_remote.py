"""Running one try of a task in another process: what is sent, what comes back.

Used by :class:`~kernelflow.runners.ProcessPoolTaskRunner` and
:class:`~kernelflow.dask.DaskTaskRunner`. The engine stays in the flow's
process and drives every state; a worker only calls the function. So a
worker never needs the store, and every task run is recorded by the flow's
process.

Out (:func:`encode_call`): the function and its arguments, pickled with
cloudpickle (functions defined in ``__main__`` or a notebook travel by value),
plus what the function may ask for while it runs: the task run's identity
(for ``get_run_logger``), ``log_prints``, the log level and the store home
(so ``concurrency()`` inside the task uses the same limits).

Back: the return value or the exception (with the worker's traceback text),
and what the function printed and logged. :func:`execute` runs in the worker;
a *sink* receives each log record and each piece of printed text as it
happens (a process worker streams them over its pipe; Dask returns them with
the result), and :func:`replay_event` re-emits them in the flow's process, so
they land in the console, the notebook cell and the store as if the task had
run there.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import cloudpickle

from kernelflow import context, settings
from kernelflow.errors import TaskSerializationError

if TYPE_CHECKING:
    from kernelflow._protocols import TaskLike

__all__ = ["RemoteTraceback", "decode_reply", "encode_call", "execute", "replay_event"]

#: A sink: called with ("log", record_dict) or ("out", (stream_name, text)).
Sink = Callable[[str, Any], None]


# --- in the flow's process -------------------------------------------------------------
def encode_call(
    task: TaskLike, parameters: dict[str, Any], where: str, soft_timeout: bool = False
) -> bytes:
    """The pickled request for one try of ``task`` with ``parameters``.

    ``where`` names the destination in errors ("a worker process", "Dask").
    With ``soft_timeout``, the worker applies ``task.timeout_seconds`` itself
    (Dask cannot kill a worker's thread from outside).

    Raises
    ------
    TaskSerializationError
        The function or an argument cannot be pickled; the message names it.
    """
    ctx = context.task_context.get()
    run = ctx.task_run if ctx is not None else None
    args, kwargs = task.to_call_args(parameters)
    request = {
        "fn": _FunctionReference.to(task) or task.fn,
        "args": args,
        "kwargs": kwargs,
        "parameters": parameters,
        "task_name": task.name,
        "run": None
        if run is None
        else {
            "id": run.id,
            "name": run.name,
            "flow_run_id": run.flow_run_id,
            "tags": list(run.tags),
            "run_count": run.run_count,
        },
        "log_prints": bool(ctx.log_prints) if ctx is not None else bool(task.log_prints),
        "log_level": logging.getLogger("kernelflow").getEffectiveLevel(),
        "home": str(settings.home()),
        "timeout": task.timeout_seconds if soft_timeout else None,
    }
    try:
        return cloudpickle.dumps(request)
    except Exception as exc:
        raise _unpicklable(task, parameters, where, exc) from None


class _FunctionReference:
    """A task function named by module and attribute path, resolved by import in the worker.

    cloudpickle sends a function by reference only when its module attribute
    *is* the function; under ``@task`` that attribute is the Task, so the
    function would travel by value, with copies of the globals it uses. A
    reference keeps module state, source lines in tracebacks and payloads
    small. Functions of ``__main__`` (scripts, notebooks) still go by value.
    """

    __slots__ = ("module", "path")

    def __init__(self, module: str, path: str) -> None:
        self.module = module
        self.path = path

    @classmethod
    def to(cls, task: TaskLike) -> _FunctionReference | None:
        fn = task.fn
        module_name = getattr(fn, "__module__", None)
        path = getattr(fn, "__qualname__", "")
        if not module_name or module_name == "__main__" or "<locals>" in path:
            return None
        target = sys.modules.get(module_name)
        for part in path.split("."):
            target = getattr(target, part, None)
        return cls(module_name, path) if target is task else None

    def resolve(self) -> Callable:
        import importlib

        target: Any = importlib.import_module(self.module)
        for part in self.path.split("."):
            target = getattr(target, part)
        return target.fn


def _describe(value: Any) -> str:
    kind = type(value)
    return (
        f"a {kind.__module__}.{kind.__qualname__}"
        if kind.__module__ != "builtins"
        else (f"a {kind.__qualname__}")
    )


def _reason(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _unpicklable(
    task: TaskLike, parameters: dict[str, Any], where: str, exc: BaseException
) -> TaskSerializationError:
    """Name the part of a request that cannot be pickled."""
    advice = "or run this task with ThreadPoolTaskRunner"
    try:
        cloudpickle.dumps(task.fn)
    except Exception as fn_exc:
        return TaskSerializationError(
            f"Cannot send task '{task.name}' to {where}: its function "
            f"{getattr(task.fn, '__qualname__', task.fn)!r} cannot be pickled "
            f"({_reason(fn_exc)}); move what it refers to into the function, {advice}."
        )
    for name, value in parameters.items():
        try:
            cloudpickle.dumps(value)
        except Exception as arg_exc:
            return TaskSerializationError(
                f"Cannot send task '{task.name}' to {where}: its argument {name!r} "
                f"({_describe(value)}) cannot be pickled ({_reason(arg_exc)}); pass something "
                f"picklable (e.g. a path or settings to create it inside the task), {advice}."
            )
    return TaskSerializationError(
        f"Cannot send task '{task.name}' to {where}: {_reason(exc)}; {advice}."
    )


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, attached as its ``__cause__``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def decode_reply(data: bytes) -> tuple[str, Any, list]:
    """``(kind, payload, events)`` of a worker's reply; see :func:`execute`."""
    return cloudpickle.loads(data)


def raise_or_return(kind: str, payload: Any, task_name: str) -> Any:
    """Turn a decoded reply into the try's value, or raise what the worker raised.

    A ``"timeout"`` reply raises :class:`kernelflow.timeouts.DeadlineExceeded`,
    which the engine records as TimedOut.
    """
    if kind == "ok":
        return payload
    if kind == "timeout":
        from kernelflow.timeouts import DeadlineExceeded

        raise DeadlineExceeded(payload)
    exc, text = payload
    if text:
        exc.__cause__ = RemoteTraceback(text)
    raise exc


def replay_event(kind: str, data: Any) -> None:
    """Re-emit, in the flow's process, one log record or piece of output from a worker."""
    if kind == "log":
        record = logging.makeLogRecord(data)
        logging.getLogger(record.name).handle(record)
    elif kind == "out":
        stream_name, text = data
        stream = sys.stderr if stream_name == "stderr" else sys.stdout
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed console must not fail the task


# --- in the worker ---------------------------------------------------------------------
_sink: contextvars.ContextVar[Sink | None] = contextvars.ContextVar(
    "kernelflow_remote_sink", default=None
)
_installed = False
_install_lock = threading.Lock()
_RECORD_FIELDS = (
    "name",
    "levelno",
    "levelname",
    "created",
    "msecs",
    "relativeCreated",
    "run_id",
    "run_kind",
    "run_label",
    "journal",
    "thread",
    "threadName",
    "process",
    "funcName",
    "lineno",
    "pathname",
    "filename",
    "module",
)


class _CaptureHandler(logging.Handler):
    """Hands kernelflow log records of a remote try to its sink."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = _sink.get()
        if sink is None:
            return
        data = {key: getattr(record, key) for key in _RECORD_FIELDS if hasattr(record, key)}
        data["msg"] = record.getMessage()
        data["args"] = None
        if record.exc_info and record.levelno >= logging.ERROR:
            data["msg"] += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        try:
            sink("log", data)
        except Exception:
            self.handleError(record)


class _RoutedStream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` of a worker: text written during a try goes to its sink."""

    def __init__(self, original: Any, name: str) -> None:
        self._original = original
        self._name = name

    def write(self, text: str) -> int:
        sink = _sink.get()
        if sink is None or not text:
            return self._original.write(text)
        sink("out", (self._name, text))
        return len(text)

    def flush(self) -> None:
        self._original.flush()

    def isatty(self) -> bool:
        return False

    # The stubs declare TextIOBase.encoding a plain attribute; at run time it is a
    # read-only descriptor, so a property is the one way to follow the wrapped stream.
    @property
    def encoding(self) -> str:  # type: ignore[override]  # see the comment above
        return getattr(self._original, "encoding", "utf-8")

    def fileno(self) -> int:
        return self._original.fileno()


def _install() -> None:
    """Route this worker process's kernelflow logs and stdout/stderr to sinks (once)."""
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        from kernelflow import logs

        # A worker reports to the flow's process instead of printing or journaling.
        if not logs._configured:
            logs._configured = True
        logger = logging.getLogger(logs.ROOT)
        logger.addHandler(_CaptureHandler())
        logger.propagate = False
        sys.stdout = _RoutedStream(sys.stdout, "stdout")
        sys.stderr = _RoutedStream(sys.stderr, "stderr")
        _installed = True


def _worker_context(request: dict) -> context.TaskRunContext | None:
    info = request["run"]
    if info is None:
        return None
    from kernelflow.runs import TaskRun

    run = TaskRun(request["task_name"], info["name"], info["flow_run_id"], info["tags"])
    run.id = info["id"]
    run.run_count = info["run_count"]
    # Only a stand-in for the task: code inside a remote try reads its name, fn and tags
    # (runtime.task_run), never the options the engine read before sending the call.
    task = cast("TaskLike", _TaskInfo(request["task_name"], request["fn"], info["tags"]))
    return context.TaskRunContext(task, run, request["parameters"], request["log_prints"])


class _TaskInfo:
    """What code inside a remote try can see of its task (the Task object stays home)."""

    __slots__ = ("fn", "name", "tags")

    def __init__(self, name: str, fn: Callable, tags: list[str]) -> None:
        self.name = name
        self.fn = fn
        self.tags = frozenset(tags)


def execute(data: bytes, sink: Sink, events: list | None = None) -> bytes:
    """Run one requested try in this (worker) process; return the pickled reply.

    The reply is ``(kind, payload, events)``: ``("ok", value, …)``,
    ``("error", (exception, traceback_text), …)`` or ``("timeout", seconds, …)``.
    ``events`` is the list given (a caller whose ``sink`` collects events
    instead of streaming them, as on Dask), or empty.
    """
    events = [] if events is None else events
    _install()
    try:
        request = cloudpickle.loads(data)
        if isinstance(request["fn"], _FunctionReference):
            request["fn"] = request["fn"].resolve()
    except Exception as exc:
        error = TaskSerializationError(
            f"The worker cannot load the task it was sent ({_reason(exc)}); make the task's "
            "module importable in the worker's environment."
        )
        return cloudpickle.dumps(("error", (error, ""), events))
    if str(settings.home()) != request["home"]:
        settings.use_home(request["home"])
    logging.getLogger("kernelflow").setLevel(request["log_level"])
    task_ctx = _worker_context(request)
    if request["log_prints"]:
        from kernelflow.logs import enable_print_capture

        enable_print_capture()
    sink_token = _sink.set(sink)
    task_token = context.task_context.set(task_ctx)
    try:
        fn, args, kwargs = request["fn"], request["args"], request["kwargs"]
        if request["timeout"] is None:
            value = fn(*args, **kwargs)
        else:
            from kernelflow.errors import TaskRunTimeoutError
            from kernelflow.timeouts import DeadlineExceeded, call_with_timeout

            try:
                value = call_with_timeout(fn, args, kwargs, request["timeout"], TaskRunTimeoutError)
            except DeadlineExceeded:
                return cloudpickle.dumps(("timeout", request["timeout"], events))
        reply: tuple = ("ok", value, events)
    except Exception as exc:
        reply = ("error", (_portable(exc), _format(exc)), events)
    finally:
        context.task_context.reset(task_token)
        _sink.reset(sink_token)
        _flush()
    try:
        return cloudpickle.dumps(reply)
    except Exception as exc:
        error = TaskSerializationError(
            f"Task '{request['task_name']}' returned {_describe(reply[1])}, which cannot be "
            f"pickled back to the flow's process ({_reason(exc)}); return something picklable."
        )
        return cloudpickle.dumps(("error", (error, ""), events))


def _format(exc: BaseException) -> str:
    # Start below this module's own frame: the user's code is what matters.
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code.co_filename == __file__ and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives a pickle round trip, else a RuntimeError carrying its text."""
    try:
        cloudpickle.loads(cloudpickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(
            f"{type(exc).__name__}: {exc} (the original exception could not be pickled)"
        )


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
