"""The HTML copy of an executed notebook: made when first asked for, kept, remade when stale."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import nbformat
import pytest

from kernelflow.deployments.html_copy import html_copy, html_path


def executed(path: Path, text: str = "value 8") -> Path:
    """A notebook as papermill leaves it: a code cell with its printed output."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('value', 4 * 2)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")]
    nb.cells = [cell]
    nbformat.write(nb, path)
    return path


def age(path: Path, seconds: float) -> None:
    """Set ``path``'s modification time ``seconds`` in the past."""
    when = path.stat().st_mtime - seconds
    os.utime(path, (when, when))


class TestHtmlCopy:
    def test_made_on_first_ask_next_to_the_notebook_and_private(self, tmp_path):
        notebook = executed(tmp_path / "run.ipynb")
        assert not html_path(notebook).exists()  # nothing until asked for
        made = html_copy(notebook)
        assert made == tmp_path / "run.html"
        text = made.read_text()
        assert text.startswith("<!DOCTYPE html>") and "value 8" in text
        assert stat.S_IMODE(made.stat().st_mode) == 0o600

    def test_kept_for_later_asks(self, tmp_path):
        notebook = executed(tmp_path / "run.ipynb")
        made = html_copy(notebook)
        made.write_text("<html>kept</html>")  # a render would overwrite this
        assert html_copy(notebook).read_text() == "<html>kept</html>"

    def test_remade_when_the_notebook_is_newer(self, tmp_path):
        notebook = executed(tmp_path / "run.ipynb")
        made = html_copy(notebook)
        age(made, 60)
        executed(notebook, "value 9")  # a retry rewrote the notebook
        assert "value 9" in html_copy(notebook).read_text()

    def test_a_link_in_its_place_is_replaced_never_followed(self, tmp_path):
        notebook = executed(tmp_path / "run.ipynb")
        secret = tmp_path / "secret.txt"
        secret.write_text("secret")
        html_path(notebook).symlink_to(secret)
        made = html_copy(notebook)
        assert not made.is_symlink() and "value 8" in made.read_text()
        assert secret.read_text() == "secret"

    def test_a_missing_notebook_raises(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            html_copy(tmp_path / "none.ipynb")
