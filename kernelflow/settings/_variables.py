"""Every ``KERNELFLOW_*`` variable, declared once: type, default, check and meaning.

:class:`Settings` has one attribute per variable a user may set; :func:`current`
returns the settings of the environment as it is now. It is cached, keyed by
the raw values of the declared variables (one dictionary lookup each), so a
test's ``monkeypatch.setenv`` is seen at the next read. An attribute is parsed
when first read, and only then: a bad ``KERNELFLOW_RETENTION`` stops pruning,
not a query. A bad value is refused with one
:class:`~kernelflow.errors.ConfigurationError` line naming the variable and
what to write, as a bad command-line flag is.

Variables kernelflow sets for its own child processes (a deployment run's
kernel, for instance) are listed in :data:`INTERNAL` with their meaning, and
read through :func:`internal`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from kernelflow.errors import ConfigurationError

__all__ = [
    "DEPLOYMENT_RUN",
    "DEPLOYMENT_RUN_INFO",
    "INTERNAL",
    "Settings",
    "Variable",
    "current",
    "internal",
    "render_internal_table",
    "render_markdown",
    "render_table",
    "variables",
]

PREFIX = "KERNELFLOW_"

T = TypeVar("T")


class Variable(Generic[T]):
    """One ``KERNELFLOW_*`` variable: an attribute of :class:`Settings`.

    Parameters
    ----------
    suffix
        The name after ``KERNELFLOW_``.
    default
        The value when the variable is unset or blank; a callable is called
        at each read (a default that depends on ``$HOME``).
    parse
        Turns the raw text into the value, or raises a one-line
        :class:`~kernelflow.errors.ConfigurationError`.
    shown
        The default as the table of variables shows it.
    doc
        What the variable means, for the table.
    """

    def __init__(
        self,
        suffix: str,
        default: T | Callable[[], T],
        parse: Callable[[str, str], T],
        *,
        shown: str,
        doc: str,
    ) -> None:
        self.name = PREFIX + suffix
        self.default = default
        self.parse = parse
        self.shown = shown
        self.doc = doc
        self.attribute = suffix.lower()

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    def value(self, raw: str | None) -> T:
        """The value of this variable when the environment holds ``raw``."""
        if raw is None or not raw.strip():
            return self.default() if callable(self.default) else self.default
        return self.parse(raw, self.name)

    @overload
    def __get__(self, instance: None, owner: type) -> Variable[T]: ...
    @overload
    def __get__(self, instance: Settings, owner: type) -> T: ...
    def __get__(self, instance: Settings | None, owner: type) -> T | Variable[T]:
        if instance is None:
            return self
        value = self.value(instance._raw.get(self.name))
        if not callable(self.default):
            # Remembered on the instance: the next read skips this descriptor.
            instance.__dict__[self.attribute] = value
        return value

    def __repr__(self) -> str:
        return f"Variable({self.name})"


# -- checks: each returns the value or raises one line naming the variable -----------


def _seconds(raw: str, name: str, *, allow_zero: bool = False, example: str = "") -> float:
    from kernelflow._durations import check_seconds

    try:
        return check_seconds(raw, name, allow_zero=allow_zero)
    except ConfigurationError:
        bound = "" if allow_zero else " > 0"
        raise ConfigurationError(
            f"{name}={raw!r} is not a number of seconds{bound}; set it to e.g. {example}."
        ) from None


def seconds(example: float, *, allow_zero: bool = False) -> Callable[[str, str], float]:
    """A check for a finite number of seconds (``30s``, ``5m`` allowed)."""

    def check(raw: str, name: str) -> float:
        return _seconds(raw, name, allow_zero=allow_zero, example=f"{example:g}")

    return check


def _retention(raw: str, name: str) -> float:
    return _seconds(raw, name, example="90d")


_TRUE = frozenset({"on", "1", "true", "yes"})
_FALSE = frozenset({"off", "0", "false", "no"})


def on_off(raw: str, name: str) -> bool:
    """A check for on/off (``on``, ``off``, ``true``, ``false``, ``1``, ``0``...)."""
    value = raw.strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ConfigurationError(f"{name}={raw!r} is not on or off; set it to on or off.")


def choice(*choices: str) -> Callable[[str, str], str]:
    """A check for one of ``choices`` (case-insensitive)."""

    def check(raw: str, name: str) -> str:
        value = raw.strip().lower()
        if value in choices:
            return value
        raise ConfigurationError(
            f"{name}={raw!r} is not one of {', '.join(choices)}; set it to one of those."
        )

    return check


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str, name: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigurationError(
            f"{name}={raw!r} is not a log level; set it to one of {', '.join(LOG_LEVELS)}."
        )
    return level


def _home(raw: str, name: str) -> Path:
    return Path(raw).expanduser()


def _default_home() -> Path:
    return Path.home() / ".kernelflow"


def _megabytes(raw: str, name: str) -> float:
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = math.nan
    if not megabytes > 0 or megabytes == math.inf:
        raise ConfigurationError(
            f"{name}={raw.strip()!r} is not a size in megabytes > 0; set it to e.g. 64."
        )
    return megabytes


INLINE_FOLD_BYTES = 4 * 1024 * 1024


def _bytes(raw: str, name: str) -> int:
    if not raw.strip().isdigit():
        raise ConfigurationError(
            f"{name}={raw.strip()!r} is not a whole number of bytes; "
            f"set it to e.g. {INLINE_FOLD_BYTES}."
        )
    return int(raw)


def _workers(raw: str, name: str) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigurationError(
            f"{name}={raw.strip()!r} is not a whole number >= 1; set it to one, or unset it "
            "for no bound."
        )
    return value


class Settings:
    """kernelflow's settings, one attribute per ``KERNELFLOW_*`` variable.

    Read-only. Get the environment's with :func:`current`; build one from any
    mapping with ``Settings({"KERNELFLOW_WIDGETS": "off"})``. Each attribute
    is checked when first read.

    Examples
    --------
    >>> Settings({"KERNELFLOW_COMPACT_SECONDS": "2m"}).compact_seconds
    120.0
    """

    home: Variable[Path] = Variable(
        "HOME", _default_home, _home, shown="``~/.kernelflow``", doc="where the store lives"
    )
    logging_level: Variable[str] = Variable(
        "LOGGING_LEVEL", "INFO", _log_level, shown="``INFO``", doc="console log level"
    )
    compact_seconds: Variable[float] = Variable(
        "COMPACT_SECONDS", 5.0, seconds(5), shown="``5``", doc="background compaction period"
    )
    compact_at_exit: Variable[str] = Variable(
        "COMPACT_AT_EXIT",
        "detach",
        choice("detach", "inline", "off"),
        shown="``detach``",
        doc="``detach``, ``inline`` or ``off``",
    )
    compact_background: Variable[str] = Variable(
        "COMPACT_BACKGROUND",
        "auto",
        choice("auto", "inline"),
        shown="``auto``",
        doc="``auto``: a backlog over 1 MB is folded in a child process; "
        "``inline``: always in the thread",
    )
    journal_rotate_mb: Variable[float] = Variable(
        "JOURNAL_ROTATE_MB",
        64.0,
        _megabytes,
        shown="``64``",
        doc="a process's journal goes on in a new file past this size",
    )
    lock_timeout: Variable[float] = Variable(
        "LOCK_TIMEOUT",
        10.0,
        seconds(10, allow_zero=True),
        shown="``10``",
        doc="seconds to wait for the database",
    )
    inline_fold_bytes: Variable[int] = Variable(
        "INLINE_FOLD_BYTES",
        INLINE_FOLD_BYTES,
        _bytes,
        shown="``4194304`` = 4 MiB",
        doc="a query folds a backlog up to this many journal bytes first; a bigger one is "
        "folded in a child while the query answers",
    )
    widgets: Variable[bool] = Variable(
        "WIDGETS", True, on_off, shown="``on``", doc="live widgets in notebooks"
    )
    retention: Variable[float | None] = Variable(
        "RETENTION",
        None,
        _retention,
        shown="unset: keep everything",
        doc="prune runs older than this (e.g. ``90d``) once a day",
    )
    tasks_runner_thread_pool_max_workers: Variable[int | None] = Variable(
        "TASKS_RUNNER_THREAD_POOL_MAX_WORKERS",
        None,
        _workers,
        shown="unset: no bound",
        doc="threads of a ``ThreadPoolTaskRunner()`` made without ``max_workers`` "
        "(Prefect's ``PREFECT_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS``)",
    )

    _raw: dict[str, str]

    def __init__(self, environ: Any = None) -> None:
        source = os.environ if environ is None else environ
        raw = {v.name: source[v.name] for v in _VARIABLES if v.name in source}
        object.__setattr__(self, "_raw", raw)

    def raw(self, attribute: str) -> str | None:
        """The text the variable of ``attribute`` was set to, unchecked (None when unset)."""
        variable = vars(Settings).get(attribute)
        if not isinstance(variable, Variable):
            raise AttributeError(f"Settings has no variable {attribute!r}")
        return self._raw.get(variable.name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Settings are read-only; set {PREFIX}{name.upper()} instead.")

    def __repr__(self) -> str:
        return f"Settings({self._raw!r})"


_VARIABLES: tuple[Variable, ...] = tuple(
    value for value in vars(Settings).values() if isinstance(value, Variable)
)


def variables() -> tuple[Variable, ...]:
    """Every variable a user may set, in the order of the table."""
    return _VARIABLES


_NAMES = tuple(v.name for v in _VARIABLES)
_environ_bytes: dict | None = getattr(os.environ, "_data", None)
if isinstance(_environ_bytes, dict) and os.name == "posix":
    _KEYS: tuple[Any, ...] = tuple(os.environ.encodekey(n) for n in _NAMES)
    _source: Any = _environ_bytes
else:  # the raw values, decoded: slower, and correct anywhere
    _KEYS = _NAMES
    _source = os.environ
_cached: tuple[tuple[Any, ...], Settings] | None = None


def current() -> Settings:
    """The settings of the environment as it is now (cached until a variable changes)."""
    global _cached
    snapshot = tuple(map(_source.get, _KEYS))
    cached = _cached
    if cached is not None and cached[0] == snapshot:
        return cached[1]
    found = Settings()
    _cached = (snapshot, found)
    return found


# -- variables kernelflow sets for its own child processes -------------------------------

#: The run id the deployment worker gives the kernel that executes a deployment run.
DEPLOYMENT_RUN = "KERNELFLOW_DEPLOYMENT_RUN"
#: JSON of that deployment and run, for ``kernelflow.runtime`` in that kernel.
DEPLOYMENT_RUN_INFO = "KERNELFLOW_DEPLOYMENT_RUN_INFO"

#: Name (or prefix, ending in ``__``) → meaning, of each variable kernelflow sets for
#: a child process it starts, or that a test sets to fake a runtime value.
INTERNAL: dict[str, str] = {
    DEPLOYMENT_RUN: "the deployment run a kernel executes (set by the "
    "deployment worker); its cells are recorded in that run",
    DEPLOYMENT_RUN_INFO: "JSON of the deployment and run that "
    "``kernelflow.runtime`` reports in that kernel",
    "KERNELFLOW_DEPLOYMENT_ID": "a kernel's session run is recorded as a run of this "
    "deployment (the deployment worker removes it)",
    "KERNELFLOW_PARENT_FLOW_RUN_ID": "a kernel's session run is a child of this flow run",
    "KERNELFLOW__RUNTIME__": "overrides ``kernelflow.runtime.<module>.<attribute>``, "
    "for tests (Prefect's ``PREFECT__RUNTIME__``)",
}


def is_declared(name: str) -> bool:
    """Whether ``name`` is a declared variable, public or internal."""
    if name in _NAMES or name in INTERNAL:
        return True
    return any(key.endswith("__") and name.startswith(key) for key in INTERNAL)


def internal(name: str) -> str | None:
    """The value of internal variable ``name`` as set (None when unset).

    Raises
    ------
    KeyError
        ``name`` is not declared in :data:`INTERNAL` (a programming error).
    """
    if name not in INTERNAL and not any(
        key.endswith("__") and name.startswith(key) for key in INTERNAL
    ):
        raise KeyError(f"{name} is not declared in kernelflow.settings.INTERNAL")
    return os.environ.get(name)


# -- the table in kernelflow.settings' docstring -----------------------------------------


def _entry(name: str, default: str | None, meaning: str) -> list[str]:
    import textwrap

    head = f"``{name}``" + (f" (default {default})" if default else "")
    body = textwrap.wrap(meaning, 84, break_long_words=False, break_on_hyphens=False)
    return [head, *(f"    {line}" for line in body)]


def render_table() -> str:
    """The list of variables, as :mod:`kernelflow.settings`' docstring shows it."""
    return "\n".join(line for v in _VARIABLES for line in _entry(v.name, v.shown, v.doc))


def render_markdown() -> str:
    """The table of variables, as the README's "Configuration" section shows it."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for v in _VARIABLES:
        cells = (f"``{v.name}``", v.shown, v.doc)
        rows.append("| " + " | ".join(c.replace("``", "`") for c in cells) + " |")
    return "\n".join(rows)


def render_internal_table() -> str:
    """The list of internal variables, as :mod:`kernelflow.settings`' docstring shows it."""
    return "\n".join(
        line
        for name, meaning in INTERNAL.items()
        for line in _entry(
            f"{name}<MODULE>__<ATTRIBUTE>" if name.endswith("__") else name, None, meaning
        )
    )
