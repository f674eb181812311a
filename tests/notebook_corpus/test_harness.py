"""The corpus's own machinery, without kernels: converter, manifest, task versions, comparison.

These run in a fraction of a second, so a mistake in the harness shows here
rather than as a puzzling difference in the slow corpus test.
"""

from __future__ import annotations

import base64
import copy
import io
import re

import nbformat
import pytest

import corpus_harness
from convert import split_sphinx_gallery
from corpus_harness import (
    LOAD_EXT,
    ORDER_ONLY,
    WHY_CELL,
    Execution,
    Problem,
    analyse,
    compare,
    load_manifest,
    read_notebook,
    task_version,
    view_of,
    with_parameter,
)

GALLERY = '''"""
Title
=====

What it shows.
"""

import numpy as np

x = np.arange(3)

# %%
# A section
# ---------
#
# Some text.

print(x)

##############################################################################
# More text.
y = x * 2
'''


class TestConvert:
    def test_sphinx_gallery(self) -> None:
        cells = split_sphinx_gallery(GALLERY)
        kinds = [kind for kind, _ in cells]
        assert kinds == ["markdown", "code", "markdown", "code", "markdown", "code"]
        assert cells[0][1].startswith("Title")
        assert cells[1][1] == "import numpy as np\n\nx = np.arange(3)"
        assert cells[2][1] == "A section\n---------\n\nSome text."
        assert cells[5][1] == "y = x * 2"


class TestManifest:
    @pytest.mark.parametrize("entry", load_manifest()["notebooks"], ids=lambda e: e["name"])
    def test_entry(self, entry: dict) -> None:
        """Every entry names its source and licence, and its change and masks apply."""
        assert {"repository", "ref", "path", "licence", "sha256"} <= set(entry["source"])
        nb = read_notebook(entry["name"])
        changed = with_parameter(nb, entry["parameter"])
        assert changed.cells[entry["parameter"]["cell"]].source != (
            nb.cells[entry["parameter"]["cell"]].source
        )
        for item in entry.get("masks", []) + entry.get("nondeterministic", []):
            assert nb.cells[item["cell"]].cell_type == "code" and item["why"]
        for item in entry.get("masks", []):
            re.compile(item["pattern"])

    def test_enough_notebooks(self) -> None:
        assert len(load_manifest()["notebooks"]) >= 12


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title", id="md"),
        nbformat.v4.new_code_cell("n = 3", id="a"),
        nbformat.v4.new_code_cell("%%time\nn + 1", id="b"),
        nbformat.v4.new_code_cell("", id="c"),
    ]
    return nb


class TestTaskVersion:
    def test_cells(self) -> None:
        task = task_version(_notebook())
        assert task.cells[0].source == LOAD_EXT
        assert task.cells[2].source == "%%task\nn = 3"
        assert task.cells[3].source == "%%time\nn + 1"  # a cell magic stays as it is
        assert task.cells[4].source == ""
        assert task.cells[-1].source == WHY_CELL
        assert [c.id for c in task.cells[1:-1]] == ["md", "a", "b", "c"]

    def test_parameter_must_occur_once(self) -> None:
        nb = _notebook()
        assert with_parameter(nb, {"cell": 1, "old": "3", "new": "4"}).cells[1].source == "n = 4"
        with pytest.raises(ValueError, match="occurs 0 times"):
            with_parameter(nb, {"cell": 1, "old": "5", "new": "4"})


def _cell(*outputs: dict) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def _stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": text}


def _result(text: str) -> dict:
    return {"output_type": "execute_result", "data": {"text/plain": text}, "metadata": {}}


def _png(colour: tuple[int, int, int], **info: object) -> dict:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), colour).save(buffer, format="PNG", **info)
    data = {"image/png": base64.b64encode(buffer.getvalue()).decode()}
    return {"output_type": "display_data", "data": data, "metadata": {}}


class TestCompare:
    def test_kernelflow_lines_and_addresses_are_masked(self) -> None:
        plain = view_of(_cell(_stream("a\n"), _result("<A at 0x7f00aa11bb22>")), 0, "x", [])
        task = view_of(
            _cell(
                _stream("cached · took 41 ms · ran 3 s ago\na\n"),
                _stream(
                    "/tmp/ipykernel_1/2.py:1: CacheWarning: %%task cell 'x' ran but is "
                    "not cached\n  x = 1\n",
                    "stderr",
                ),
                _result("<A at 0x7f99cc33dd44>"),
            ),
            0,
            "x",
            [],
        )
        assert task.hit and len(task.kernelflow_lines) == 2
        assert compare(plain, task) == []

    def test_cell_files_of_warnings_are_masked(self) -> None:
        warning = "/tmp/ipykernel_{}/{}.py:{}: FutureWarning: soon\n  x.f()\n"
        plain = view_of(_cell(_stream(warning.format(546, 3403707760, 3), "stderr")), 0, "x", [])
        task = view_of(_cell(_stream(warning.format(549, 3295528051, 4), "stderr")), 0, "x", [])
        assert compare(plain, task) == []

    def test_a_real_difference_is_reported(self) -> None:
        plain = view_of(_cell(_stream("a = 1\n")), 0, "x", [])
        task = view_of(_cell(_stream("cached · took 1 s · ran 2 s ago\na = 2\n")), 0, "x", [])
        differences = compare(plain, task)
        assert differences and "stdout differs" in differences[0]
        assert Problem("task 2", 0, "x", task.hit, differences).kind == "false hit"

    def test_masks_from_the_manifest(self) -> None:
        mask = [re.compile(r"took [0-9.]+ s")]
        plain = view_of(_cell(_stream("took 1.5 s\n")), 0, "x", mask)
        task = view_of(_cell(_stream("took 2.5 s\n")), 0, "x", mask)
        assert compare(plain, task) == []

    def test_order_only(self) -> None:
        plain = view_of(_cell(_result("1"), _png((255, 0, 0))), 0, "x", [])
        task = view_of(_cell(_png((255, 0, 0)), _result("1")), 0, "x", [])
        differences = compare(plain, task)
        assert len(differences) == 1 and differences[0].startswith(ORDER_ONLY)
        assert Problem("task 1", 0, "x", False, differences).kind == "order only"

    def test_images(self) -> None:
        red = view_of(_cell(_png((255, 0, 0))), 0, "x", [])
        tagged = view_of(_cell(_png((255, 0, 0), dpi=(300, 300))), 0, "x", [])
        blue = view_of(_cell(_png((0, 0, 255))), 0, "x", [])
        assert compare(red, tagged) == []  # other bytes, same pixels
        assert compare(red, blue) == ["display_data #0 image/png: 16 of 16 pixels differ"]


class TestNondeterministic:
    """Cells listed as nondeterministic: out of the hit rate, outputs still compared."""

    def _report(self, monkeypatch: pytest.MonkeyPatch, listed: dict) -> corpus_harness.Report:
        plain = nbformat.v4.new_notebook()
        plain.cells = [
            nbformat.v4.new_code_cell("n = 3\nn", id="a"),
            nbformat.v4.new_code_cell("draw()", id="b"),
        ]
        monkeypatch.setattr(corpus_harness, "read_notebook", lambda name: plain)

        def run(label: str, outputs: list[list[dict]], task: bool) -> Execution:
            nb = task_version(plain) if task else copy.deepcopy(plain)
            for cell, cell_outputs in zip(
                nb.cells[1:-1] if task else nb.cells, outputs, strict=True
            ):
                cell.outputs = [nbformat.from_dict(o) for o in cell_outputs]
            return Execution(label, nb, 1.0)

        cached = _stream("cached · took 1 s · ran 2 s ago\n")
        executions = {
            "plain": run("plain", [[_result("3")], [_result("0.5")]], False),
            "plain changed": run("plain changed", [[_result("4")], [_result("0.5")]], False),
            "task 1": run("task 1", [[_result("3")], [_result("0.5")]], True),
            "task 2": run("task 2", [[cached, _result("3")], [_result("0.7")]], True),
            "task 3": run("task 3", [[cached, _result("3")], [_result("0.5")]], True),
            "task changed": run("task changed", [[_result("4")], [_result("0.5")]], True),
        }
        entry = {
            "name": "fake",
            "parameter": {"cell": 0, "old": "3", "new": "4"},
            "nondeterministic": [{"cell": 1, "why": "draws", **listed}],
        }
        return analyse(entry, executions, [])

    def test_left_out_of_the_hit_rate_but_compared(self, monkeypatch: pytest.MonkeyPatch) -> None:
        report = self._report(monkeypatch, {})
        assert report.eligible == [0]
        assert report.hits["task 2"] == [0] and report.hits["task 3"] == [0]
        assert not any("eligible cells hit" in failure for failure in report.failures)
        assert [(p.run, p.index) for p in report.problems] == [("task 2", 1)]

    def test_random_output_is_not_compared(self, monkeypatch: pytest.MonkeyPatch) -> None:
        report = self._report(monkeypatch, {"random_output": True})
        assert report.eligible == [0] and report.problems == []
