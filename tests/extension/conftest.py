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
def jp_server_config() -> dict[str, Any]:
    """Enable kernelflow's server extension, as its installed config file does."""
    return {"ServerApp": {"jpserver_extensions": {"kernelflow": True}}}
