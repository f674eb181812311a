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
    KernelflowError,
    RunNotFoundError,
    StoreError,
)
from kernelflow.extension import payloads

__all__ = [
    "DEPLOYMENTS_RESOURCE",
    "ERROR_STATUS",
    "HEALTH_RESOURCE",
    "RUNS_RESOURCE",
    "DeploymentsHandler",
    "HealthHandler",
    "KernelflowHandler",
    "RunHandler",
    "RunLogsHandler",
    "RunsHandler",
    "error_status",
    "routes",
]

#: Our errors and the HTTP status each becomes; the first matching class wins.
ERROR_STATUS: tuple[tuple[type[KernelflowError], int], ...] = (
    (ConfigurationError, 400),  # a bad query parameter
    (RunNotFoundError, 404),
    (DeploymentNotFoundError, 404),
    (StoreError, 409),  # locked, corrupt or too new a store: the store's state, not the request
)

#: The ``auth_resource`` of the run endpoints (runs, one run, its logs).
RUNS_RESOURCE = "kernelflow.runs"
#: The ``auth_resource`` of the deployments endpoint.
DEPLOYMENTS_RESOURCE = "kernelflow.deployments"
#: The ``auth_resource`` of the health endpoint.
HEALTH_RESOURCE = "kernelflow.health"

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

    async def answer(self, compute: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``compute(*args, **kwargs)`` off the IOLoop and write its result as JSON.

        Errors in :data:`ERROR_STATUS` are answered with their status and
        ``{"message": <the error's one line>, "reason": <its class name>}``;
        anything else is a bug and propagates (500, logged with its traceback).
        """
        call = functools.partial(compute, *args, **kwargs)
        try:
            payload = await IOLoop.current().run_in_executor(_store_executor(), call)
        except KernelflowError as exc:
            status = error_status(exc)
            if status is None:
                raise
            # The path, not the URI: a query string may carry the server's token.
            self.log.info(
                "kernelflow: %s %s -> %d: %s", self.request.method, self.request.path, status, exc
            )
            self.set_status(status)
            self.finish(json.dumps({"message": str(exc), "reason": type(exc).__name__}))
            return
        self.finish(json.dumps(payload))

    def query(self, name: str) -> str | None:
        """The query argument ``name`` (the last one if repeated), or None."""
        return self.get_query_argument(name, None)


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
    """``GET /kernelflow/api/deployments``."""

    auth_resource = DEPLOYMENTS_RESOURCE

    @tornado.web.authenticated
    @authorized("read")
    async def get(self) -> None:
        await self.answer(payloads.deployments_overview)


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
    return [
        (url_path_join(api, "runs"), RunsHandler),
        (run, RunHandler),
        (url_path_join(run, "logs"), RunLogsHandler),
        (url_path_join(api, "deployments"), DeploymentsHandler),
        (url_path_join(api, "health"), HealthHandler),
    ]
