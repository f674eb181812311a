"""Fixtures for the server extension: pytest-jupyter's in-process Jupyter server.

pytest-jupyter is not registered as a plugin for the whole run: its autouse
event-loop fixtures would then wrap every test of the project (and clash with
Playwright's sync API, see the browser test). Importing its fixtures here
scopes them to ``tests/extension``.
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403


@pytest.fixture
def jp_server_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Enable kernelflow's server extension, as its installed config file does.

    A test module's ``KERNELFLOW_APP`` dict, when it has one, configures ``KernelflowApp``
    (``{"run_scheduler": False}``: the extension without its scheduler, so queued runs
    stay queued and nothing executes).
    """
    config: dict[str, Any] = {"ServerApp": {"jpserver_extensions": {"kernelflow": True}}}
    app = getattr(request.module, "KERNELFLOW_APP", None)
    if app is not None:
        config["KernelflowApp"] = dict(app)
    return config
