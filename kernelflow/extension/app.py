"""``KernelflowApp``: the server extension as a configurable Jupyter ``ExtensionApp``.

It adds the REST handlers (:mod:`kernelflow.extension.handlers`) and, with
:attr:`KernelflowApp.run_scheduler` on (the default), runs a
:class:`~kernelflow.deployments.scheduler.Scheduler` inside the server: it
starts when the server has started and stops when the server stops. So
``jupyter lab`` alone fires every active deployment. Several servers, or a
``kernelflow scheduler``, on one store still fire each slot once: one
holds the store's scheduler lease and the others stand by, taking over when
the holder stops.

Configure it like any Jupyter application, e.g. in ``jupyter_server_config.py``::

    c.KernelflowApp.run_scheduler = True
    c.KernelflowApp.slots = 2
    c.KernelflowApp.store_home = "/srv/kernelflow"
    c.KernelflowApp.backend_class = "mypackage.backends:ClusterBackend"

or on the command line: ``jupyter lab --KernelflowApp.slots=2``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Int, TraitError, Type, Unicode, default, validate

from kernelflow.extension.handlers import APP_SETTING, routes

__all__ = ["KernelflowApp"]

#: Seconds the server waits for its scheduler to stop (runs are cancelled first).
STOP_TIMEOUT_S = 60.0


class _BackendClassTrait(Type):
    """A :class:`~kernelflow.deployments.backends.DeploymentBackend` subclass.

    Given as a class, ``module:Class`` or ``module.Class``; a bad value is a
    one-line :class:`~traitlets.TraitError` that says what to write.
    """

    def validate(self, obj: Any, value: Any) -> Any:
        """The backend class ``value`` names (imported now), or a TraitError saying why not."""
        from kernelflow.deployments.backends import load_backend_class
        from kernelflow.errors import ConfigurationError

        try:
            return load_backend_class(value, f"KernelflowApp.{self.name}")
        except ConfigurationError as exc:
            raise TraitError(str(exc)) from None


class KernelflowApp(ExtensionApp):
    """kernelflow inside the Jupyter server: the REST API and the deployment scheduler.

    Examples
    --------
    ``jupyter lab --KernelflowApp.run_scheduler=False`` serves the panel but
    fires nothing (another process, e.g. ``kernelflow scheduler``, does).
    """

    name = "kernelflow"
    # Another extension (jupyterlab) is the application users start; we only add to it.
    load_other_extensions = True

    run_scheduler = Bool(
        True,
        config=True,
        help=(
            "Run kernelflow's deployment scheduler inside this server, so that deployments "
            "fire while it runs. Several servers (or 'kernelflow scheduler') on one store "
            "share the work through a lease: one fires, the others stand by."
        ),
    )
    slots = Int(
        4,
        config=True,
        help="At most this many deployment runs (notebook processes) at once.",
    )
    backend_class = _BackendClassTrait(
        default_value="kernelflow.deployments.backends.DefaultBackend",
        klass="kernelflow.deployments.backends.DeploymentBackend",
        config=True,
        help=(
            "Where deployment runs execute: a subclass of "
            "kernelflow.deployments.backends.DeploymentBackend, as 'module:Class' or "
            "'module.Class'. The default, DefaultBackend, runs a deployment deployed with "
            "--dask ADDRESS on that Dask cluster and any other in a local papermill worker; "
            "LocalBackend and DaskBackend force one of the two."
        ),
    )
    store_home = Unicode(
        config=True,
        help=(
            "The kernelflow store this server reads and schedules (default: KERNELFLOW_HOME, "
            "else ~/.kernelflow)."
        ),
    )

    @default("store_home")
    def _default_store_home(self) -> str:
        from kernelflow import settings

        return str(settings.home())

    @validate("slots")
    def _check_slots(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"KernelflowApp.slots must be at least 1, got {proposal['value']}.")
        return int(proposal["value"])

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: The scheduler running in this server, or None.
        self.scheduler: Any = None

    def initialize_settings(self) -> None:
        """Point this process at :attr:`store_home` and make the app reachable by handlers."""
        from kernelflow import settings

        home = Path(self.store_home).expanduser()
        if home != settings.home():
            settings.use_home(home)
        self.settings[APP_SETTING] = self

    def initialize_handlers(self) -> None:
        """Add the REST API under ``<base_url>kernelflow/api/``."""
        self.handlers.extend(routes("/"))
        server = self.serverapp  # set by the server before it asks for handlers
        base_url = server.base_url if server is not None else "/"
        self.log.info("kernelflow: REST API at %skernelflow/api/", base_url)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Once the server runs: start the scheduler (when :attr:`run_scheduler` is on)."""
        if not self.run_scheduler:
            self.log.info("kernelflow: the scheduler is off (KernelflowApp.run_scheduler)")
            return
        from kernelflow.deployments.scheduler.loop import Scheduler

        label = f"jupyter server (port {getattr(serverapp, 'port', '?')})"
        self.scheduler = Scheduler(
            slots=self.slots, home=self.store_home, label=label, backend=self.backend_class()
        )
        self.scheduler.start()
        self.log.info(
            "kernelflow: scheduler started for %s (%d slots); it fires deployments while "
            "it holds the store's lease; runs execute on %s",
            self.store_home,
            self.slots,
            self.backend_class.__name__,
        )

    async def stop_extension(self) -> None:
        """Stop the scheduler: its runs in progress are cancelled, queued fires handed on."""
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None,
            lambda: scheduler.stop(cancel_running=True, timeout=STOP_TIMEOUT_S),
        )
        self.log.info("kernelflow: scheduler stopped")
