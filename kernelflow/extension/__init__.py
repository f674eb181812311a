"""kernelflow's Jupyter server extension: the store as JSON for the JupyterLab panel.

Installing kernelflow enables it (``jupyter-config/server-config/kernelflow.json``
ships in the wheel); ``jupyter server extension list`` shows it. It serves,
behind the server's authentication and its ``Authorizer`` (each endpoint needs
``read`` on the resource in brackets):

======================================  =============================================
``GET /kernelflow/api/runs``            flow runs, newest first
                                        (``?flow=&state=&limit=&offset=``)
                                        [``kernelflow.runs``]
``GET /kernelflow/api/runs/<id>``       one run with its task runs, subflows and one
                                        page of its logs, the newest by default
                                        (``?log_offset=&log_limit=``)
                                        [``kernelflow.runs``]
``GET /kernelflow/api/runs/<id>/logs``  one page of a run's logs
                                        (``?offset=&limit=``) [``kernelflow.runs``]
``GET /kernelflow/api/deployments``     deployments with their next and last run
                                        [``kernelflow.deployments``]
``GET /kernelflow/api/health``          the extension's version and store
                                        [``kernelflow.health``]
======================================  =============================================

Only the server imports this package: ``import kernelflow`` does not.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "kernelflow.extension"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Add the REST handlers to the running Jupyter server."""
    from kernelflow.extension.handlers import routes

    web_app = server_app.web_app
    web_app.add_handlers(".*$", routes(web_app.settings["base_url"]))
    server_app.log.info("kernelflow: REST API at %skernelflow/api/", web_app.settings["base_url"])
