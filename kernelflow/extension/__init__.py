"""kernelflow's Jupyter server extension: the JupyterLab panel's REST API and the scheduler.

Installing kernelflow enables it (``jupyter-config/server-config/kernelflow.json``
ships in the wheel); ``jupyter server extension list`` shows it. It is the
``ExtensionApp`` :class:`~kernelflow.extension.app.KernelflowApp`, configured
by traitlets (``run_scheduler``, ``slots``, ``store_home``): with
``run_scheduler`` on (the default) the server runs the deployment scheduler
while it runs. It serves, behind the server's authentication and its
``Authorizer`` (each endpoint needs the action on the resource in brackets):

=================================================  ==========================================
``GET runs``                                       flow runs, newest first
                                                   (``?flow=&state=&limit=&offset=``)
                                                   [read ``kernelflow.runs``]
``GET runs/<id>``                                  one run with its task runs, subflows and
                                                   one page of its logs
                                                   (``?log_offset=&log_limit=``)
                                                   [read ``kernelflow.runs``]
``GET runs/<id>/logs``                             one page of a run's logs
                                                   (``?offset=&limit=``) [read ``kernelflow.runs``]
``GET runs/<id>/notebook``, ``.../html``           the executed notebook, its HTML copy
                                                   (sandboxed) [read ``kernelflow.runs``]
``POST runs/<id>/cancel``                          Cancelling, then Cancelled, kernel killed
                                                   [write ``kernelflow.runs``]
``POST runs/<id>/rerun``                           the deployment again, same parameters
                                                   [execute ``kernelflow.deployments``]
``POST runs/<id>/resume``                          resume a run paused awaiting input
                                                   (``{"input": {...}}``)
                                                   [write ``kernelflow.runs``]
``GET deployments``                                deployments with their next and last run
                                                   [read ``kernelflow.deployments``]
``POST deployments``                               deploy a notebook under the server root
                                                   [write ``kernelflow.deployments``]
``PATCH deployments/<name>``                       change it; ``paused`` pauses / resumes
                                                   [write ``kernelflow.deployments``]
``DELETE deployments/<name>``                      delete it (its runs stay)
                                                   [write ``kernelflow.deployments``]
``POST deployments/<name>/runs``                   run it now (``{"parameters": {...}}``)
                                                   [execute ``kernelflow.deployments``]
``GET scheduler``                                  who holds the scheduler lease
                                                   [read ``kernelflow.deployments``]
``POST schedule/preview``                          a schedule in words, its next fire times
                                                   [read ``kernelflow.deployments``]
``GET notebooks/parameters?path=``                 a notebook's typed ``parameters`` cell
                                                   [read ``kernelflow.deployments``]
``GET health``                                     the extension's version and store
                                                   [read ``kernelflow.health``]
=================================================  ==========================================

All under ``<base_url>kernelflow/api/``. Only the server imports this package:
``import kernelflow`` does not.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from kernelflow import _jupyter_server_extension_points as points

    return points()
