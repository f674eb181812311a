"""Cache traps that only a new kernel process shows (issue 9), in real kernels.

Restored values must hash as they did before (a fitted pipeline, an instance of
a class defined in the notebook), so the cells that read them hit in the next
kernel too; a cell that seeds the global generator hits; one that draws
unseeded never does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kernel_helpers import LiveKernel, error_of, stdout_of

pytestmark = pytest.mark.slow

CELLS = [
    "%load_ext kernelflow",
    """%%task data
from sklearn.datasets import load_iris
X, y = load_iris(return_X_y=True)""",
    """%%task build
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
model = make_pipeline(StandardScaler(), PCA(n_components=2), LogisticRegression())""",
    "%%task fit\nmodel.fit(X, y)",
    "%%task score\nprint('score', round(model.score(X, y), 4))",
    """%%task shapes
class Shape:
    def __init__(self, sides):
        self.sides = sides
    def describe(self):
        return f"{self.sides} sides"
square = Shape(4)""",
    "%%task describe\nprint(square.describe())",
    """%%task seeded
import numpy as np
np.random.seed(3)
sample = np.random.rand(2).round(6).tolist()
print(sample)""",
    "%%task noise\nimport random\nprint(random.random())",
    "print(model.steps[-1][1].coef_.shape, square.sides, sample)",
    """%%task plot
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([1, 3, 2])""",
    "%%task pipe\nmodel",
]


def _run(kernel_name: str, cwd: Path) -> list[Any]:
    with LiveKernel(kernel_name, cwd) as kernel:
        return [kernel.run(source) for source in CELLS]


def test_restored_values_hash_as_before_so_readers_hit_in_a_new_kernel(
    kernel_name: str, tmp_path: Path, store: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("KERNELFLOW_WIDGETS", "off")
    first = _run(kernel_name, tmp_path)
    second = _run(kernel_name, tmp_path)
    for ran in (first, second):
        assert [error_of(c) for c in ran] == [None] * len(CELLS)
    for index in (*range(1, len(CELLS) - 4), len(CELLS) - 2, len(CELLS) - 1):
        assert stdout_of(second[index]).startswith("cached · took "), CELLS[index]
        replayed = stdout_of(second[index]).split("\n", 1)[1]
        assert replayed == stdout_of(first[index]), CELLS[index]
    noise, check, plot, pipe = (len(CELLS) - 4, len(CELLS) - 3, len(CELLS) - 2, len(CELLS) - 1)
    assert not stdout_of(second[noise]).startswith("cached")  # unseeded: never frozen
    assert stdout_of(second[noise]) != stdout_of(first[noise])
    assert stdout_of(second[check]) == stdout_of(first[check])
    assert stdout_of(first[check]) == "(3, 2) 4 [0.550798, 0.708148]\n"
    # The figure comes after Out[], as in a plain cell, once; a hit shows the same image.
    for ran in (first, second):
        kinds = [o["output_type"] for o in ran[plot].outputs if o["output_type"] != "stream"]
        assert kinds == ["execute_result", "display_data"], kinds
    images = [
        [
            o["data"]["image/png"]
            for o in ran[plot].outputs
            if "data" in o and "image/png" in o["data"]
        ]
        for ran in (first, second)
    ]
    assert images[0] == images[1] and len(images[0]) == 1
    # scikit-learn numbers its HTML diagrams per call: shown once, the ids match.
    html = [
        next(
            o["data"]["text/html"]
            for o in ran[pipe].outputs
            if o["output_type"] == "execute_result"
        )
        for ran in (first, second)
    ]
    assert html[0] == html[1]
    names = store.sql(
        "SELECT name, list(state_name ORDER BY created) AS states FROM task_runs "
        "GROUP BY name ORDER BY name"
    )
    # Task runs are named like the cell, with a run number: data-0.
    states = {
        n.rsplit("-", 1)[0]: list(s) for n, s in zip(names["name"], names["states"], strict=True)
    }
    for cell in ("data", "build", "fit", "score", "shapes", "describe", "seeded", "plot", "pipe"):
        assert states[cell] == ["Completed", "Cached"], cell
    assert states["noise"] == ["Completed", "Completed"]
