"""The layers of docs/decisions/layers.md hold: the import contract, its picture, room sizes.

`make lint` runs the same contract (`lint-imports`); running it here too means CI
(`make test`) refuses an upward import or a cycle, not only a developer's lint.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "kernelflow"

#: No module over this many lines (issue 14): a room that big has more than one job.
MAX_LINES = 500


def _lint_imports() -> str:
    found = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("lint-imports is missing: `make setup` installs import-linter (test extra)")
    return found


def test_imports_only_go_down_and_no_sibling_cycle():
    done = subprocess.run(
        [_lint_imports(), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def test_the_contract_refuses_an_upward_import(tmp_path):
    """The check can fail: in a copy where a store module imports the engine, it does."""
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    shutil.copytree(
        PACKAGE, tmp_path / "kernelflow", ignore=shutil.ignore_patterns("labextension", "*.pyc")
    )
    (tmp_path / "kernelflow" / "store" / "upward.py").write_text(
        "from kernelflow.engine import set_state\n"
    )
    done = subprocess.run(
        [_lint_imports(), "--no-cache"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout[-4000:]
    assert "kernelflow.store.upward -> kernelflow.engine" in done.stdout


def test_the_picture_in_the_decision_record_is_current():
    done = subprocess.run(
        [sys.executable, "scripts/layers_picture.py", "--check", "docs/decisions/layers.md"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_no_module_is_over_500_lines():
    big = {
        str(path.relative_to(REPO)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}, f"split these by job (docs/decisions/layers.md): {big}"
