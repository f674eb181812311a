"""A kernelspec for tests that start real kernels: this Python, this checkout importable."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write_kernelspec(
    data: Path, name: str, display_name: str, env: dict[str, str] | None = None
) -> str:
    """Write kernelspec ``name`` under ``data/kernels`` and return its name.

    Point ``JUPYTER_PATH`` at ``data`` to use it. The kernel runs ``sys.executable``
    with the checkout on ``PYTHONPATH``, so it sees the code under test even
    outside the project's virtual environment; ``env`` adds variables to its environment.
    """
    spec = data / "kernels" / name
    spec.mkdir(parents=True)
    spec.joinpath("kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": display_name,
                "language": "python",
                "env": {"PYTHONPATH": checkout_pythonpath(), **(env or {})},
            }
        )
    )
    return name


def checkout_pythonpath() -> str:
    """``PYTHONPATH`` with this checkout first."""
    return os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
