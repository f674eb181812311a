"""Tornado handlers: thin, authenticated, authorized, JSON in and out.

Every handler method is ``@tornado.web.authenticated`` (who is asking) and
then ``@authorized`` (may they): jupyter_server asks its configured
``Authorizer`` (``ServerApp.authorizer_class``: read-only sharing, JupyterHub
scopes, ...) whether the user may perform the action on the handler's
``auth_resource``. Reads are ``read``; a handler that changes the store is
``write``, one that runs a notebook ``execute``. A refusal is a 403, like an
unauthenticated request. The resources are :data:`RUNS_RESOURCE`,
:data:`DEPLOYMENTS_RESOURCE` and :data:`HEALTH_RESOURCE`, so an authorizer can
share runs without deployments.

Each handler reads its arguments on the IOLoop, then runs the blocking store
read (:mod:`kernelflow.extension.payloads`) on one worker thread, so a slow
query never stalls the server and the server's own reads never contend for
the store's lock with each other. Our errors become HTTP statuses in one
place, :data:`ERROR_STATUS`; bad input is a 400, never a 500.

The write endpoints (deploy, change, run, cancel, rerun, resume, preview)
do their work in :mod:`kernelflow.extension.actions`; creating or changing
a deployment is ``write`` on :data:`DEPLOYMENTS_RESOURCE`, running one
``execute``, cancelling or resuming a run ``write`` on :data:`RUNS_RESOURCE`.
Non-GET requests carry the XSRF token when made with cookies, as
``APIHandler`` checks it (token-authenticated requests are exempt).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado.ioloop import IOLoop

from kernelflow.errors import (
    ConfigurationError,
    DeploymentNotFoundError,
    FlowPauseTimeout,
    KernelflowError,
    PauseError,
    RunNotFoundError,
    StoreError,
)
from kernelflow.extension import actions, deployment_payloads, payloads, run_files
from kernelflow.extension.actions import ActionConflictError
from kernelflow.extension.run_files import NotebookNotFoundError

__all__ = [
    "DEPLOYMENTS_RESOURCE",
    "ERROR_STATUS",
    "HEALTH_RESOURCE",
    "RUNS_RESOURCE",
    "DeploymentHandler",
    "DeploymentRunsHandler",
    "DeploymentsHandler",
    "HealthHandler",
    "KernelflowHandler",
    "NotebookParametersHandler",
    "RunCancelHandler",
    "RunFileHandler",
    "RunHandler",
    "RunLogsHandler",
    "RunRerunHandler",
    "RunResumeHandler",
    "RunsHandler",
    "SchedulePreviewHandler",
    "SchedulerHandler",
    "error_status",
    "routes",
]

#: Our errors and the HTTP status each becomes; the first matching class wins.
ERROR_STATUS: tuple[tuple[type[KernelflowError], int], ...] = (
    (ConfigurationError, 400),  # a bad query parameter or body (RunInputError too)
    (RunNotFoundError, 404),
    (DeploymentNotFoundError, 404),
    (NotebookNotFoundError, 404),
    (ActionConflictError, 409),  # the run's or deployment's state does not allow it
    (PauseError, 409),  # not paused (NotPausedError), or its process is gone
    (FlowPauseTimeout, 409),
    (StoreError, 409),  # locked, corrupt or too new a store: the store's state, not the request
)

#: The ``auth_resource`` of the run endpoints (runs, one run, its logs).
RUNS_RESOURCE = "kernelflow.runs"
#: The ``auth_resource`` of the deployments endpoint.
DEPLOYMENTS_RESOURCE = "kernelflow.deployments"
#: The ``auth_resource`` of the health endpoint.
HEALTH_RESOURCE = "kernelflow.health"
#: The settings key under which :class:`~kernelflow.extension.app.KernelflowApp` is found.
APP_SETTING = "kernelflow_app"

_executor: ThreadPoolExecutor | None = None


def _store_executor() -> ThreadPoolExecutor:
    # One thread: the store's file lock serialises readers anyway, and one
    # thread keeps this process from opening the DuckDB file twice at once.
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kernelflow-store")
    return _executor


def error_status(error: BaseException) -> int | None:
    """The HTTP status for one of our errors, or None for an error that is a bug."""
    for kind, status in ERROR_STATUS:
        if isinstance(error, kind):
            return status
    return None


class KernelflowHandler(APIHandler):
    """Base class: answer with the JSON a blocking store function returns."""

    async def answer(
        self, compute: Callable[..., Any], *args: Any, status: int = 200, **kwargs: Any
    ) -> None:
        """Run ``compute(*args, **kwargs)`` off the IOLoop and write its result as JSON.

        The answer has ``status`` (201, 202 for the write endpoints). Errors
        in :data:`ERROR_STATUS` are answered with their status and
        ``{"message": <the error's one line>, "reason": <its class name>}``;
        anything else is a bug and propagates (500, logged with its traceback).
        """
        call = functools.partial(compute, *args, **kwargs)
        try:
            payload = await IOLoop.current().run_in_executor(_store_executor(), call)
        except KernelflowError as exc:
            failed = error_status(exc)
            if failed is None:
                raise
            # The path, not the URI: a query string may carry the server's token.
            self.log.info(
                "kernelflow: %s %s -> %d: %s", self.request.method, self.request.path, failed, exc
            )
            self.set_status(failed)
            message = " ".join(str(exc).split())  # one line, always
            self.finish(json.dumps({"message": message, "reason": type(exc).__name__}))
            return
        self.set_status(status)
        self.finish(json.dumps(payload))

    def query(self, name: str) -> str | None:
        """The query argument ``name`` (the last one if repeated), or None."""
        return self.get_query_argument(name, None)

    def body(self) -> dict[str, Any]:
        """The request's JSON object; a 400 (raised as our error) for anything else."""
        return actions.parse_body(self.request.body)

    @property
    def kernelflow_app(self) -> Any:
        """The running :class:`~kernelflow.extension.app.KernelflowApp`, or None."""
        return self.settings.get(APP_SETTING)

    @property
    def scheduler(self) -> Any:
        """This server's scheduler, or None when it runs none."""
        app = self.kernelflow_app
        return getattr(app, "scheduler", None)

    @property
    def root_dir(self) -> str:
        """The server's root directory: notebook paths in requests are relative to it."""
        return str(self.settings.get("server_root_dir") or self.contents_manager.root_dir)

    async def act(
        self, compute: Callable[..., Any], *args: Any, status: int = 200, **kwargs: Any
    ) -> None:
        """:meth:`answer`, with a bad request body answered as a 400 too."""
        try:
            body = self.body()
        except KernelflowError as exc:
            self.set_status(400)
            self.finish(json.dumps({"message": str(exc), "reason": type(exc).__name__}))
            return
        await self.answer(compute, *args, body, status=status, **kwargs)


class RunsHandler(KernelflowHandler):
    """``GET /kernelflow/api/runs?flow=&state=&limit=&offset=``."""

    auth_resource = RUNS_RESOURCE

    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        await self.answer(
            payloads.runs_page,
            flow=self.query("flow"),
            state=self.query("state"),
            limit=self.query("limit"),
            offset=self.query("offset"),
            deployment=self.query("deployment"),
            since=self.query("since"),
            until=self.query("until"),
        )


class RunHandler(KernelflowHandler):
    """``GET /kernelflow/api/runs/<id>?log_offset=&log_limit=``.

    The run, its task runs, subflows and one page of its logs (the newest by default).
    """

    auth_resource = RUNS_RESOURCE

    @tornado.web.authenticated
    @authorized("read")
    async def get(self, run_id: str) -> None:
        await self.answer(
            payloads.run_detail,
            run_id,
            log_offset=self.query("log_offset"),
            log_limit=self.query("log_limit"),
        )


class RunLogsHandler(KernelflowHandler):
    """``GET /kernelflow/api/runs/<id>/logs?offset=&limit=``: one page of a run's logs."""

    auth_resource = RUNS_RESOURCE

    @tornado.web.authenticated
    @authorized("read")
    async def get(self, run_id: str) -> None:
        await self.answer(
            payloads.run_logs, run_id, offset=self.query("offset"), limit=self.query("limit")
        )


class DeploymentsHandler(KernelflowHandler):
    """``GET /kernelflow/api/deployments``; ``POST`` deploys a notebook (201)."""

    auth_resource = DEPLOYMENTS_RESOURCE

    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        await self.answer(deployment_payloads.deployments_overview)

    @tornado.web.authenticated
    @authorized("write")
    async def post(self) -> None:
        await self.act(actions.create_deployment, self.root_dir, status=201)


class DeploymentHandler(KernelflowHandler):
    """``PATCH`` / ``DELETE /kernelflow/api/deployments/<name>``: change, pause, delete."""

    auth_resource = DEPLOYMENTS_RESOURCE

    @tornado.web.authenticated
    @authorized("write")
    async def patch(self, name: str) -> None:
        await self.act(actions.update_deployment, self.root_dir, name)

    @tornado.web.authenticated
    @authorized("write")
    async def delete(self, name: str) -> None:
        await self.answer(actions.delete_deployment, name)


class DeploymentRunsHandler(KernelflowHandler):
    """``POST /kernelflow/api/deployments/<name>/runs``: run it now (202)."""

    auth_resource = DEPLOYMENTS_RESOURCE

    @tornado.web.authenticated
    @authorized("execute")
    async def post(self, name: str) -> None:
        await self.act(actions.run_now, name, status=202)


class SchedulerHandler(KernelflowHandler):
    """``GET /kernelflow/api/scheduler``: who holds the scheduler lease."""

    auth_resource = DEPLOYMENTS_RESOURCE

    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        await self.answer(actions.scheduler_status, self.scheduler)


class SchedulePreviewHandler(KernelflowHandler):
    """``POST /kernelflow/api/schedule/preview``: a schedule in words and its next fires."""

    auth_resource = DEPLOYMENTS_RESOURCE

    @tornado.web.authenticated
    @authorized("read")
    async def post(self) -> None:
        await self.act(actions.schedule_preview)


class NotebookParametersHandler(KernelflowHandler):
    """``GET /kernelflow/api/notebooks/parameters?path=``: a notebook's typed parameters."""

    auth_resource = DEPLOYMENTS_RESOURCE

    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        await self.answer(actions.notebook_parameters, self.root_dir, self.query("path"))


class RunCancelHandler(KernelflowHandler):
    """``POST /kernelflow/api/runs/<id>/cancel``: Cancelling, then Cancelled (202)."""

    auth_resource = RUNS_RESOURCE

    @tornado.web.authenticated
    @authorized("write")
    async def post(self, run_id: str) -> None:
        await self.answer(actions.cancel_run, run_id, self.scheduler, status=202)


class RunRerunHandler(KernelflowHandler):
    """``POST /kernelflow/api/runs/<id>/rerun``: the same deployment and parameters again."""

    auth_resource = DEPLOYMENTS_RESOURCE

    @tornado.web.authenticated
    @authorized("execute")
    async def post(self, run_id: str) -> None:
        await self.answer(actions.rerun, run_id, status=202)


class RunResumeHandler(KernelflowHandler):
    """``POST /kernelflow/api/runs/<id>/resume``: resume a run paused awaiting input."""

    auth_resource = RUNS_RESOURCE

    @tornado.web.authenticated
    @authorized("write")
    async def post(self, run_id: str) -> None:
        await self.act(actions.resume_run, run_id)


class RunFileHandler(KernelflowHandler):
    """``GET /kernelflow/api/runs/<id>/notebook`` and ``.../html``: read-only copies.

    The HTML is sandboxed (``Content-Security-Policy: sandbox``): an executed
    notebook's outputs may hold any script, and must not run with the
    server's origin.
    """

    auth_resource = RUNS_RESOURCE

    @tornado.web.authenticated
    @authorized("read")
    async def get(self, run_id: str, kind: str) -> None:
        call = functools.partial(run_files.run_file, run_id, kind)
        try:
            data = await IOLoop.current().run_in_executor(_store_executor(), call)
        except KernelflowError as exc:
            status = error_status(exc)
            if status is None:
                raise
            self.set_status(status)
            self.finish(json.dumps({"message": str(exc), "reason": type(exc).__name__}))
            return
        self.set_header("X-Content-Type-Options", "nosniff")
        if kind == "html":
            self.set_header("Content-Security-Policy", "sandbox")
            self.finish(data, set_content_type="text/html; charset=utf-8")
        else:
            self.finish(data, set_content_type="application/x-ipynb+json")


class HealthHandler(KernelflowHandler):
    """``GET /kernelflow/api/health``."""

    auth_resource = HEALTH_RESOURCE

    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        await self.answer(payloads.health)


def routes(base_url: str) -> list[tuple[str, type[KernelflowHandler]]]:
    """The URL patterns under the server's ``base_url`` and their handlers."""
    api = url_path_join(base_url, "kernelflow", "api")
    run = url_path_join(api, "runs", r"(?P<run_id>[^/]+)")
    deployment = url_path_join(api, "deployments", r"(?P<name>[^/]+)")
    return [
        (url_path_join(api, "runs"), RunsHandler),
        (run, RunHandler),
        (url_path_join(run, "logs"), RunLogsHandler),
        (url_path_join(run, "cancel"), RunCancelHandler),
        (url_path_join(run, "rerun"), RunRerunHandler),
        (url_path_join(run, "resume"), RunResumeHandler),
        (url_path_join(run, r"(?P<kind>notebook|html)"), RunFileHandler),
        (url_path_join(api, "deployments"), DeploymentsHandler),
        (deployment, DeploymentHandler),
        (url_path_join(deployment, "runs"), DeploymentRunsHandler),
        (url_path_join(api, "scheduler"), SchedulerHandler),
        (url_path_join(api, "schedule", "preview"), SchedulePreviewHandler),
        (url_path_join(api, "notebooks", "parameters"), NotebookParametersHandler),
        (url_path_join(api, "health"), HealthHandler),
    ]
