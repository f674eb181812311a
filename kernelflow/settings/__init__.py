"""Settings read from ``KERNELFLOW_*`` environment variables, with defaults.

Nothing needs configuring to start: the store lives in ``~/.kernelflow``.
Settings are read when first needed, not at import, so a test (or
``kernelflow.testing.temporary_store``) can point a process at another
store by changing ``KERNELFLOW_HOME`` or calling :func:`use_home`.

Every variable is declared once, as an attribute of :class:`Settings`
(:mod:`kernelflow.settings._variables`), and read through :func:`current`;
a test checks that the list below matches those declarations and that no
other module reads a ``KERNELFLOW_*`` variable itself.

``KERNELFLOW_HOME`` (default ``~/.kernelflow``)
    where the store lives
``KERNELFLOW_LOGGING_LEVEL`` (default ``INFO``)
    console log level
``KERNELFLOW_COMPACT_SECONDS`` (default ``5``)
    background compaction period
``KERNELFLOW_COMPACT_AT_EXIT`` (default ``detach``)
    ``detach``, ``inline`` or ``off``
``KERNELFLOW_COMPACT_BACKGROUND`` (default ``auto``)
    ``auto``: a backlog over 1 MB is folded in a child process; ``inline``: always in
    the thread
``KERNELFLOW_JOURNAL_ROTATE_MB`` (default ``64``)
    a process's journal goes on in a new file past this size
``KERNELFLOW_LOCK_TIMEOUT`` (default ``10``)
    seconds to wait for the database
``KERNELFLOW_INLINE_FOLD_BYTES`` (default ``4194304`` = 4 MiB)
    a query folds a backlog up to this many journal bytes first; a bigger one is folded
    in a child while the query answers
``KERNELFLOW_WIDGETS`` (default ``on``)
    live widgets in notebooks
``KERNELFLOW_RETENTION`` (default unset: keep everything)
    prune runs older than this (e.g. ``90d``) once a day
``KERNELFLOW_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS`` (default unset: no bound)
    threads of a ``ThreadPoolTaskRunner()`` made without ``max_workers`` (Prefect's
    ``PREFECT_TASKS_RUNNER_THREAD_POOL_MAX_WORKERS``)

A value that cannot be used is refused with one
:class:`~kernelflow.errors.ConfigurationError` line naming the variable and
what to write, as a bad command-line flag is.

kernelflow sets these for its own child processes (read with :func:`internal`):

``KERNELFLOW_DEPLOYMENT_RUN``
    the deployment run a kernel executes (set by the deployment worker); its cells are
    recorded in that run
``KERNELFLOW_DEPLOYMENT_RUN_INFO``
    JSON of the deployment and run that ``kernelflow.runtime`` reports in that kernel
``KERNELFLOW_DEPLOYMENT_ID``
    a kernel's session run is recorded as a run of this deployment (the deployment
    worker removes it)
``KERNELFLOW_PARENT_FLOW_RUN_ID``
    a kernel's session run is a child of this flow run
``KERNELFLOW__RUNTIME__<MODULE>__<ATTRIBUTE>``
    overrides ``kernelflow.runtime.<module>.<attribute>``, for tests (Prefect's
    ``PREFECT__RUNTIME__``)

The store is private to its user (:mod:`kernelflow.settings._private`): the
home and every folder in it are created with mode 0700 and every file with
0600, whatever the umask, and a home that other users can write is refused.
"""

from __future__ import annotations

from kernelflow.settings._location import home, home_token, paths, use_home
from kernelflow.settings._private import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    StorePaths,
    open_private,
    write_private,
)
from kernelflow.settings._variables import (
    DEPLOYMENT_RUN,
    DEPLOYMENT_RUN_INFO,
    INTERNAL,
    Settings,
    Variable,
    current,
    internal,
    variables,
)

__all__ = [
    "DEPLOYMENT_RUN",
    "DEPLOYMENT_RUN_INFO",
    "INTERNAL",
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "Settings",
    "StorePaths",
    "Variable",
    "current",
    "home",
    "home_token",
    "internal",
    "open_private",
    "paths",
    "use_home",
    "variables",
    "write_private",
]
