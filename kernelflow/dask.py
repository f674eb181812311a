"""``DaskTaskRunner``: run submitted tasks on a Dask cluster (``pip install 'kernelflow[dask]'``).

Example
-------
As in Prefect (``from prefect_dask import DaskTaskRunner``)::

    from kernelflow import flow
    from kernelflow.dask import DaskTaskRunner

    @flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 4, "threads_per_worker": 2}))
    def parallel_pipeline():
        ...

With no ``address``, each flow run starts a ``distributed.LocalCluster`` and
closes it at the end; with ``address="tcp://host:8786"`` it connects to a
running scheduler instead. As with every kernelflow runner, the engine stays
in the flow's process: Dask runs each try of a task's function, and the
flow's process records states, logs, results and cache entries, so workers
never need the store. A script that starts a LocalCluster needs the usual
``if __name__ == "__main__":`` guard (Dask's worker processes re-import it).

Worker deaths: on a LocalCluster this runner starts, Dask does not silently
re-run a task whose worker died (``allowed-failures`` 0), so every execution
is a recorded try: the try fails with :class:`~kernelflow.errors.WorkerLostError`
and the task's own ``retries`` decide what happens next. A try that was
waiting on that worker, not yet running, fails the same way. A remote
scheduler applies its own ``allowed-failures`` first.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import uuid
from typing import TYPE_CHECKING, Any

from kernelflow import context
from kernelflow.errors import ConfigurationError, TaskRunnerError, WorkerLostError
from kernelflow.runners import ThreadPoolTaskRunner

if TYPE_CHECKING:
    from kernelflow._protocols import TaskLike

__all__ = ["DaskTaskRunner"]

#: Seconds to wait for a scheduler given by address, unless client_kwargs says otherwise.
CONNECT_TIMEOUT = 10.0


def _run_on_dask(request: bytes) -> bytes:
    """Run one try in a Dask worker; its logs and output come back with the reply."""
    from kernelflow._remote import execute

    events: list = []
    return execute(request, lambda kind, data: events.append((kind, data)), events)


class DaskTaskRunner(ThreadPoolTaskRunner):
    """Runs each try of a submitted task on a Dask cluster.

    Parameters
    ----------
    address:
        A running scheduler to connect to (``"tcp://host:8786"``). Without
        one, a temporary cluster of ``cluster_class`` is started per flow run.
    cluster_class:
        The cluster to start: a class or its import path; default
        ``distributed.LocalCluster``.
    cluster_kwargs:
        Keyword arguments for the cluster, e.g. ``{"n_workers": 4,
        "threads_per_worker": 2}``. A LocalCluster serves its dashboard on a
        free port (``client.dashboard_link``) unless ``dashboard_address`` is given.
    adapt_kwargs:
        When given, ``cluster.adapt(**adapt_kwargs)`` (adaptive scaling).
    client_kwargs:
        Keyword arguments for ``distributed.Client``; ``timeout`` (seconds to
        reach the scheduler) defaults to :data:`CONNECT_TIMEOUT`.

    Raises
    ------
    TaskRunnerError
        (when the flow first submits) the scheduler does not answer in time or
        the cluster cannot start; the flow run ends Failed.
    """

    def __init__(
        self,
        address: str | None = None,
        cluster_class: str | type | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        adapt_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if address is not None and cluster_class is not None:
            raise ConfigurationError(
                "DaskTaskRunner takes address= (an existing scheduler) or cluster_class= (a "
                "cluster to start), not both."
            )
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ConfigurationError(
                f"address must be a scheduler address such as 'tcp://127.0.0.1:8786', got "
                f"{address!r}."
            )
        for name, value in (
            ("cluster_kwargs", cluster_kwargs),
            ("adapt_kwargs", adapt_kwargs),
            ("client_kwargs", client_kwargs),
        ):
            if value is not None and not isinstance(value, dict):
                raise ConfigurationError(f"{name} must be a dict, got {value!r}.")
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = dict(adapt_kwargs) if adapt_kwargs is not None else None
        self.client_kwargs = dict(client_kwargs or {})
        self._client: Any = None
        self._cluster: Any = None

    def duplicate(self) -> DaskTaskRunner:
        return DaskTaskRunner(
            self.address,
            self.cluster_class,
            self.cluster_kwargs,
            self.adapt_kwargs,
            self.client_kwargs,
        )

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` of the running flow (None before the first submit)."""
        return self._client

    def start(self) -> None:
        if self._client is not None:
            return
        try:
            import dask
            import distributed
        except ImportError:
            raise ConfigurationError(
                "DaskTaskRunner needs Dask: pip install 'kernelflow[dask]'."
            ) from None
        client_kwargs = {"timeout": CONNECT_TIMEOUT, **self.client_kwargs}
        client_kwargs.setdefault("set_as_default", False)
        if self.address is not None:
            try:
                self._client = distributed.Client(self.address, **client_kwargs)
            except Exception as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise TaskRunnerError(
                    f"Could not connect to the Dask scheduler at {self.address} ({reason}); "
                    "start it, fix the address, or drop address= to start a local cluster."
                ) from None
        else:
            cluster_class = self._cluster_class(distributed)
            kwargs = dict(self.cluster_kwargs)
            if cluster_class is distributed.LocalCluster:
                # Dask's default, port 8787, fails when another cluster on the
                # machine has it (and None still binds it): take a free port.
                kwargs.setdefault("dashboard_address", ":0")
            try:
                # A worker death fails the try at once, so the task's own retries apply.
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self._cluster = cluster_class(**kwargs)
                if self.adapt_kwargs is not None:
                    self._cluster.adapt(**self.adapt_kwargs)
                self._client = distributed.Client(self._cluster, **client_kwargs)
            except Exception as exc:
                self.shutdown()
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise TaskRunnerError(
                    f"Could not start the Dask cluster {cluster_class.__name__}"
                    f"(**{kwargs!r}) ({reason}); check cluster_kwargs."
                ) from None
        threads = sum(self._client.nthreads().values()) or 4
        self._pool = cf.ThreadPoolExecutor(
            min(64, max(8, 2 * threads)), thread_name_prefix="kernelflow-task"
        )

    def _cluster_class(self, distributed: Any) -> Any:
        cls = self.cluster_class
        if cls is None:
            return distributed.LocalCluster
        if isinstance(cls, str):
            module, _, name = cls.rpartition(".")
            try:
                return getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError, ValueError):
                raise ConfigurationError(
                    f"cluster_class {cls!r} cannot be imported; give a class or a full import "
                    "path such as 'dask_jobqueue.SLURMCluster'."
                ) from None
        return cls

    def call(self, task: TaskLike, parameters: dict[str, Any]) -> Any:
        import distributed

        from kernelflow._remote import (
            decode_reply,
            encode_call,
            raise_or_return,
            replay_event,
        )

        client = self._client
        if client is None:
            # Only after shutdown (submit starts the client): the flow run has ended.
            raise TaskRunnerError("The Dask client was closed; the flow run ended.")
        request = encode_call(task, parameters, "Dask", soft_timeout=True)
        ctx = context.task_context.get()
        label = ctx.task_run.name if ctx is not None else task.name
        future = client.submit(
            _run_on_dask, request, key=f"{label}-{uuid.uuid4().hex[:12]}", pure=False
        )
        # No deadline here: the worker applies the task's timeout from when the
        # try starts (time queued on a busy cluster does not count) and replies
        # at the deadline even if the function is stuck in C code.
        try:
            reply = future.result()
        except distributed.KilledWorker as exc:
            raise WorkerLostError(
                f"The Dask worker running this try died ({' '.join(str(exc).split())[:200]}); "
                "the try failed (it is retried if the task has retries)."
            ) from None
        except cf.CancelledError:
            raise TaskRunnerError(
                "Dask cancelled this try (the cluster shut down or lost it); run the flow again."
            ) from None
        kind, payload, events = decode_reply(reply)
        for event_kind, data in events:
            replay_event(event_kind, data)
        return raise_or_return(kind, payload, task.name)

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def __repr__(self) -> str:
        if self.address:
            return f"DaskTaskRunner(address={self.address!r})"
        return f"DaskTaskRunner(cluster_kwargs={self.cluster_kwargs!r})"
