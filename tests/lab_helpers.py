"""Start a real ``jupyter lab`` and Debian's Chromium for the browser tests.

Shared by the browser tests (tests/extension, tests/widgets). As
shared/notes/jupyterlab-testing.md prescribes: isolated Jupyter, workspace
and settings directories; the lab in a subprocess on a free port, stopped by
SIGTERM to its own PID; Playwright's sync API with ``executable_path`` (never
``playwright install``).

The extension under test is the installed one (``make test``: the editable
install copied it into the environment). Where kernelflow is not installed,
the build in ``kernelflow/labextension`` and the server extension are wired in
through the lab's temporary Jupyter path and config instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TOKEN = "kernelflow-panel-test"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DIRS = ("notebooks", "workspaces", "settings", "config", "runtime", "data", "path", "home")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def python_env(**extra: str) -> dict[str, str]:
    """This environment with the repository importable, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def installed() -> bool:
    """Whether the labextension and the server extension's config are in this environment."""
    prefix = Path(sys.prefix)
    return (prefix / "share/jupyter/labextensions/kernelflow/package.json").exists() and (
        prefix / "etc/jupyter/jupyter_server_config.d/kernelflow.json"
    ).exists()


def make_dirs(root: Path, settings: dict[str, dict[str, Any]] | None = None) -> dict[str, Path]:
    """The lab's isolated directories under ``root``, with its user settings written.

    ``settings`` maps a settings file (``@jupyterlab/apputils-extension/themes``)
    to its content; the news toast is always switched off.
    """
    dirs = {name: root / name for name in DIRS}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    wanted = {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false"}}
    wanted.update(settings or {})
    for name, content in wanted.items():
        target = dirs["settings"] / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content))
    return dirs


def lab_env(dirs: dict[str, Path], base: dict[str, str]) -> dict[str, str]:
    """``base`` plus the isolated Jupyter dirs (and the extension wired in if not installed)."""
    env = dict(base)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
    )
    if not installed():
        built = REPO / "kernelflow" / "labextension"
        assert (built / "package.json").exists(), (
            "kernelflow's labextension is neither installed nor built: run `make setup`"
        )
        (dirs["path"] / "labextensions").mkdir(exist_ok=True)
        link = dirs["path"] / "labextensions" / "kernelflow"
        if not link.exists():
            link.symlink_to(built)
        env["JUPYTER_PATH"] = str(dirs["path"])
        (dirs["config"] / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"kernelflow": True}}})
        )
    return env


@dataclass
class Lab:
    """A running ``jupyter lab``: its URL, environment and log file."""

    url: str
    env: dict[str, str]
    dirs: dict[str, Path]
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call ``kernelflow/api/<path>`` with the token; the status and the parsed JSON."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/kernelflow/api/{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else None
        except urllib.error.HTTPError as error:
            text = error.read().decode()
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server's log, for assertion messages."""
        return self.log.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def running_lab(
    dirs: dict[str, Path], env: dict[str, str], *args: str, timeout: float = 90
) -> Iterator[Lab]:
    """Start ``jupyter lab`` on ``dirs["notebooks"]`` (plus ``args``); wait until kernelflow's
    API answers."""
    port = free_port()
    log_path = dirs["notebooks"].parent / "lab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                f"--port={port}",
                "--ServerApp.ip=127.0.0.1",
                f"--IdentityProvider.token={TOKEN}",
                "--allow-root",
                f"--ServerApp.root_dir={dirs['notebooks']}",
                f"--LabApp.workspaces_dir={dirs['workspaces']}",
                f"--LabApp.user_settings_dir={dirs['settings']}",
                *args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        lab = Lab(url=url, env=env, dirs=dirs, log=log_path, process=server)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    urllib.request.urlopen(f"{url}/kernelflow/api/health?token={TOKEN}", timeout=2)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(lab.log_tail()) from None
                    time.sleep(0.2)
            yield lab
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: `make test` installs it (apt-get install -y chromium)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot_dir(fallback: Path) -> Path:
    """``$KERNELFLOW_SCREENSHOTS`` when set (kept as test artifacts), else ``fallback``."""
    target = os.environ.get("KERNELFLOW_SCREENSHOTS")
    folder = Path(target) if target else fallback
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def wait_until(page: Any, check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check`` until it is truthy; waiting through Playwright keeps page events flowing."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(100)


def console_errors(page: Any) -> list[str]:
    """A list that collects the page's console errors and uncaught exceptions from now on."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}\n{e.stack}"))
    return errors
