"""How the extension is packaged: entry points, one version, and what the wheel ships."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import kernelflow

REPO = Path(__file__).resolve().parents[2]


def test_entry_points_name_the_server_module_and_the_built_panel() -> None:
    (point,) = kernelflow._jupyter_server_extension_points()
    assert point["module"] == "kernelflow.extension"
    from kernelflow.extension.app import KernelflowApp

    assert isinstance(point["app"](), KernelflowApp)  # jupyter_server builds it so
    (paths,) = kernelflow._jupyter_labextension_paths()
    assert paths["dest"] == "kernelflow"
    assert Path(kernelflow.__file__).parent / paths["src"] == REPO / "kernelflow" / "labextension"
    config = json.loads((REPO / "jupyter-config/server-config/kernelflow.json").read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"kernelflow": True}}}


def test_python_and_the_lab_extension_share_one_version() -> None:
    package = json.loads((REPO / "labextension" / "package.json").read_text())
    assert package["version"] == kernelflow.__version__
    assert package["name"] == "kernelflow"
    assert package["jupyterlab"]["outputDir"] == "../kernelflow/labextension"


def test_import_kernelflow_loads_no_server_code() -> None:
    code = (
        "import sys, kernelflow\n"
        "kernelflow._jupyter_server_extension_points(); kernelflow._jupyter_labextension_paths()\n"
        "print([m for m in ('tornado', 'jupyter_server', 'kernelflow.extension') "
        "if m in sys.modules])"
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_wheel_ships_the_panel_and_enables_the_server_extension(tmp_path: Path) -> None:
    # The build hook skips the npm build when the panel is already built (make setup built
    # it); otherwise it runs `jlpm install` and `jlpm build:prod` first.
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-build-isolation",
            "--no-deps",
            "--no-cache-dir",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("kernelflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    data = f"kernelflow-{kernelflow.__version__}.data/data/"
    shared = data + "share/jupyter/labextensions/kernelflow/"
    assert shared + "package.json" in names
    assert shared + "install.json" in names
    assert any(n.startswith(shared + "static/remoteEntry.") for n in names)
    assert data + "etc/jupyter/jupyter_server_config.d/kernelflow.json" in names
    assert "kernelflow/extension/handlers.py" in names
    built = json.loads(zipfile.ZipFile(wheel).read(shared + "package.json"))
    assert built["name"] == "kernelflow" and built["version"] == kernelflow.__version__


def test_pip_install_kernelflow_brings_the_notebook_the_server_and_the_lab() -> None:
    """`pip install kernelflow` then `jupyter lab` is the whole install: no extra to know."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    required = {
        dep.split(">")[0]
        .split("=")[0]
        .split("<")[0]
        .split("[")[0]
        .strip()
        .lower()
        .replace("_", "-")
        for dep in project["dependencies"]
    }
    needed = {"ipykernel", "ipywidgets", "anywidget", "papermill", "nbclient", "jupyter-server"}
    assert needed | {"jupyterlab", "croniter", "duckdb"} <= required
    # Only what is optional stays an extra.
    assert set(project["optional-dependencies"]) == {"notebook", "dask", "test"}
    assert project["optional-dependencies"]["notebook"] == []
