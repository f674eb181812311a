"""Typed notebook parameters from the ``parameters``-tagged cell."""

from __future__ import annotations

import json

import nbformat
import pytest

from kernelflow.deployments.parameters import (
    coerce_parameters,
    notebook_parameters,
    read_notebook,
    read_snapshot,
)
from kernelflow.errors import ConfigurationError


def notebook(source: str | None) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    if source is not None:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.append(nbformat.v4.new_code_cell("print(1)"))
    return nb


NB = notebook(
    'n: int = 10\nday: str = "2026-01-01"\nratio = 0.5\nflag = False\n'
    'names: list = []\nopts = {"a": 1}\nthing = object()'
)


class TestDeclaredTypes:
    def test_annotations_and_defaults_give_types(self):
        found = {p.name: (p.type, p.default) for p in notebook_parameters(NB).values()}
        assert found["n"] == ("int", 10)
        assert found["day"] == ("str", "2026-01-01")
        assert found["ratio"] == ("float", 0.5)
        assert found["flag"] == ("bool", False)
        assert found["names"] == ("list", [])
        assert found["opts"] == ("dict", {"a": 1})
        assert found["thing"][0] == "any"

    def test_no_parameters_cell(self):
        assert notebook_parameters(notebook(None)) is None


class TestCoercion:
    def test_text_is_converted_to_the_declared_type(self):
        values = coerce_parameters(
            NB, {"n": "5", "ratio": "2", "flag": "yes", "names": '["a"]', "day": "2026-02-02"}, "nb"
        )
        assert values == {"n": 5, "ratio": 2.0, "flag": True, "names": ["a"], "day": "2026-02-02"}

    def test_typed_values_pass_and_ints_widen_to_float(self):
        assert coerce_parameters(NB, {"n": 3, "ratio": 1}, "nb") == {"n": 3, "ratio": 1.0}

    @pytest.mark.parametrize(
        ("given", "message"),
        [
            ({"n": "five"}, "Parameter 'n' of nb is an int; 'five' is not"),
            ({"ratio": "x"}, "Parameter 'ratio' of nb is a float"),
            ({"flag": "maybe"}, "Parameter 'flag' of nb is a bool"),
            ({"names": "{}"}, "Parameter 'names' of nb is a list"),
            ({"n": True}, "Parameter 'n' of nb is an int; got True"),
        ],
    )
    def test_a_wrong_type_is_refused_naming_the_parameter(self, given, message):
        with pytest.raises(ConfigurationError, match=message):
            coerce_parameters(NB, given, "nb")

    def test_an_unknown_name_is_refused_listing_the_parameters(self):
        with pytest.raises(ConfigurationError, match=r"has no parameter 'm'.*n \(int\)"):
            coerce_parameters(NB, {"m": "1"}, "nb")

    def test_parameters_for_a_notebook_without_the_cell_say_how_to_tag_it(self):
        with pytest.raises(ConfigurationError, match="add the tag 'parameters'"):
            coerce_parameters(notebook(None), {"n": "1"}, "nb")
        assert coerce_parameters(notebook(None), {}, "nb") == {}


class TestReadNotebook:
    def test_missing_file(self, tmp_path):
        with pytest.raises(ConfigurationError, match="does not exist"):
            read_notebook(tmp_path / "nope.ipynb")

    def test_not_a_notebook(self, tmp_path):
        bad = tmp_path / "bad.ipynb"
        bad.write_text("{not json")
        with pytest.raises(ConfigurationError, match="is not a valid notebook"):
            read_notebook(bad)


class TestReadSnapshot:
    """A snapshot is read with plain JSON; it finds the same parameters as nbformat."""

    def test_same_parameters_as_nbformat_with_sources_as_lists_of_lines(self, tmp_path):
        path = tmp_path / "snap.ipynb"
        nbformat.write(NB, path)
        assert isinstance(json.loads(path.read_text())["cells"][0]["source"], list)  # on disk
        snapshot = read_snapshot(path)
        assert isinstance(snapshot, dict) and not isinstance(snapshot, nbformat.NotebookNode)
        assert notebook_parameters(snapshot) == notebook_parameters(read_notebook(path))
        given = {"n": "3", "flag": "yes"}
        assert coerce_parameters(snapshot, given, "nb") == {"n": 3, "flag": True}

    def test_a_notebook_without_the_cell_has_no_parameters(self, tmp_path):
        path = tmp_path / "plain.ipynb"
        nbformat.write(notebook(None), path)
        assert notebook_parameters(read_snapshot(path)) is None

    @pytest.mark.parametrize(
        ("text", "match"),
        [("{not json", "is not a valid notebook"), ('{"nbformat": 4}', "is not a valid notebook")],
    )
    def test_what_plain_json_cannot_read_gets_nbformat_s_one_line_error(
        self, tmp_path, text, match
    ):
        bad = tmp_path / "bad.ipynb"
        bad.write_text(text)
        with pytest.raises(ConfigurationError, match=match):
            read_snapshot(bad)

    def test_missing_file(self, tmp_path):
        with pytest.raises(ConfigurationError, match="does not exist"):
            read_snapshot(tmp_path / "nope.ipynb")

    def test_an_older_format_is_converted_by_nbformat(self, tmp_path):
        path = tmp_path / "v3.ipynb"
        nbformat.write(nbformat.v4.downgrade(NB), path, version=3)
        found = notebook_parameters(read_snapshot(path))
        assert found is not None and found["n"].type == "int"
