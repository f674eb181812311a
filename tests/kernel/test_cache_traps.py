"""Trap cells for the ``%%task`` cache contract (issue 9), on a real IPython shell.

The contract: a hit leaves the namespace, the displayed output and every object
the cell touched exactly as running the cell would have, or the cell runs.
Each test sets a trap a real notebook sets (in-place changes, closures, edited
modules, random generators, print options, files, shared references) and checks
the documented behaviour. ``restart`` stands for a new kernel: the namespace and
the runner's memory are dropped, the store on disk is kept.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kernelflow.errors import CacheWarning


def cell(ip: Any, body: str, line: str = "") -> Any:
    """Run a %%task cell; return the value it shows as Out."""
    return ip.run_cell_magic("task", line, textwrap.dedent(body))


def plain(ip: Any, source: str) -> Any:
    """Run a plain cell; return its result, raising what it raised."""
    result = ip.run_cell(textwrap.dedent(source), store_history=False)
    result.raise_error()
    return result.result


def restart(ip: Any) -> None:
    """What a new kernel changes: no namespace, no runner memory (the store stays)."""
    from kernelflow.kernel import runner_of

    runner_of(ip).writer.wait()
    ip.run_line_magic("unload_ext", "kernelflow")
    ip.reset(new_session=False)
    ip.run_line_magic("load_ext", "kernelflow")


def states(store: Any) -> list[str]:
    return store.sql("SELECT state_name FROM task_runs ORDER BY created, id")["state_name"].tolist()


def why(ip: Any, name: str, capsys: Any) -> str:
    capsys.readouterr()
    ip.run_line_magic("kf", f"why {name}")
    return capsys.readouterr().out


def twice(ip: Any, setup: str, body: str, line: str = "") -> None:
    """Run setup + the cell, restart, run both again (the second run should hit)."""
    for _ in range(2):
        restart(ip)
        plain(ip, setup)
        cell(ip, body, line)


class TestChangedInPlace:
    SETUP = """
        import numpy as np
        import pandas as pd
        lst = [1, 2]
        arr = np.zeros((2, 2))
        data = pd.DataFrame({"a": [1.0, 2.0]})
        config = {"k": 1}
    """
    BODY = """
        lst.append(5)
        arr[0, 0] = 12
        data["e"] = 1.25
        config["k"] = 2
        total = len(lst)
    """

    def test_a_hit_gives_back_every_change_the_cell_made(self, ip: Any, store: Any) -> None:
        twice(ip, self.SETUP, self.BODY)
        assert states(store) == ["Completed", "Cached"]
        ns = ip.user_ns
        assert ns["lst"] == [1, 2, 5]
        assert ns["arr"][0, 0] == 12
        assert list(ns["data"].columns) == ["a", "e"]
        assert ns["data"]["e"].tolist() == [1.25, 1.25]
        assert ns["config"] == {"k": 2}
        assert ns["total"] == 3

    def test_changes_land_in_the_live_objects_so_other_names_see_them(
        self, ip: Any, store: Any
    ) -> None:
        setup = textwrap.dedent(self.SETUP) + "alias = lst\nholder = {'arr': arr}\n"
        twice(ip, setup, self.BODY)
        assert states(store) == ["Completed", "Cached"]
        assert ip.user_ns["alias"] is ip.user_ns["lst"] and ip.user_ns["alias"] == [1, 2, 5]
        assert ip.user_ns["holder"]["arr"][0, 0] == 12

    def test_info_lists_the_inputs_changed_in_place(self, ip: Any, store: Any, capsys: Any) -> None:
        twice(ip, self.SETUP, self.BODY, "grow")
        capsys.readouterr()
        ip.run_line_magic("kf", "info grow")
        out = capsys.readouterr().out
        changed = out.split("changed in place:")[1]
        for name in ("lst", "arr", "data", "config"):
            assert f"{name} = " in changed
        assert "total = " in out.split("changed in place:")[0]

    def test_a_fitted_estimator_comes_back_fitted(self, ip: Any, store: Any) -> None:
        setup = """
            from sklearn.datasets import load_iris
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler
            from sklearn.linear_model import LogisticRegression
            X, y = load_iris(return_X_y=True)
            scaler = StandardScaler()
            model = make_pipeline(scaler, LogisticRegression(max_iter=300))
        """
        twice(ip, setup, "model.fit(X, y)\nscore = model.score(X, y)\n")
        assert states(store) == ["Completed", "Cached"]
        ns = ip.user_ns
        assert ns["model"].predict(ns["X"][:3]).tolist() == [0, 0, 0]
        # The scaler inside the pipeline is the notebook's `scaler`, fitted too.
        assert ns["model"].steps[0][1] is ns["scaler"]
        assert hasattr(ns["scaler"], "mean_")

    def test_a_part_that_cannot_be_updated_in_place_comes_back_by_value(
        self, ip: Any, store: Any
    ) -> None:
        setup = """
            class Point:
                __slots__ = ("x",)
                def __init__(self, x):
                    self.x = x
            points = [Point(1)]
        """
        twice(ip, setup, "points[0].x = 7\npoints.append(Point(2))\n")
        assert states(store) == ["Completed", "Cached"]
        assert [p.x for p in ip.user_ns["points"]] == [7, 2]

    def test_a_later_cell_changing_an_input_makes_the_reader_run(self, ip: Any, store: Any) -> None:
        restart(ip)
        cell(ip, "lst = [1, 2]\n", "make")
        cell(ip, "n = len(lst)\n", "count")
        plain(ip, "lst.append(3)")
        cell(ip, "n = len(lst)\n", "count")
        assert ip.user_ns["n"] == 3
        assert states(store) == ["Completed", "Completed", "Completed"]

    def test_a_deleted_name_is_deleted_again_on_a_hit(self, ip: Any, store: Any) -> None:
        twice(ip, "tmp = 1\nscratch = 2", "kept = tmp + 1\ndel tmp, scratch\n")
        assert states(store) == ["Completed", "Cached"]
        assert "tmp" not in ip.user_ns and "scratch" not in ip.user_ns
        assert ip.user_ns["kept"] == 2

    def test_a_changed_object_that_cannot_be_updated_in_place_runs_uncached(
        self, ip: Any, store: Any
    ) -> None:
        plain(ip, "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt")
        plain(ip, "fig, ax = plt.subplots()")
        with pytest.warns(CacheWarning, match=r"'ax': changed in place"):
            cell(ip, "ax.plot([1, 2, 3])\nlines = len(ax.lines)\n")
        with pytest.warns(CacheWarning):
            cell(ip, "ax.plot([1, 2, 3])\nlines = len(ax.lines)\n")
        assert ip.user_ns["lines"] == 2
        assert states(store) == ["Completed", "Completed"]


class TestEverythingItDependsOn:
    def test_a_closure_is_part_of_the_key(self, ip: Any, store: Any) -> None:
        plain(ip, "def make_adder(n):\n    def add(x):\n        return x + n\n    return add")
        plain(ip, "adder = make_adder(5)")
        cell(ip, "val = adder(1)\n", "use")
        plain(ip, "adder = make_adder(10)")
        cell(ip, "val = adder(1)\n", "use")
        assert ip.user_ns["val"] == 11
        assert states(store) == ["Completed", "Completed"]

    def test_defaults_globals_partials_and_bound_methods(self, ip: Any, store: Any) -> None:
        plain(
            ip,
            """
            import functools
            LIMIT = 3
            def scaled(x, factor=2):
                return x * factor + LIMIT
            class Counter:
                def __init__(self, start):
                    self.start = start
                def value(self):
                    return self.start
            triple = functools.partial(scaled, factor=3)
            counter = Counter(1)
            get = counter.value
            """,
        )
        body = "out = (scaled(1), triple(1), get())\n"
        cell(ip, body, "deps")
        assert ip.user_ns["out"] == (5, 6, 1)
        for change, expected in (
            ("LIMIT = 4", (6, 7, 1)),
            ("def scaled(x, factor=5):\n    return x * factor + LIMIT", (9, 7, 1)),
            ("triple = functools.partial(scaled, factor=10)", (9, 14, 1)),
            ("counter.start = 7", (9, 14, 7)),
        ):
            plain(ip, change)
            cell(ip, body, "deps")
            assert ip.user_ns["out"] == expected, change
        cell(ip, body, "deps")
        assert states(store) == ["Completed"] * 5 + ["Cached"]

    def test_an_edited_and_reloaded_user_module_is_a_miss(
        self, ip: Any, store: Any, tmp_path: Path, monkeypatch: Any, capsys: Any
    ) -> None:
        module = tmp_path / "trapmod.py"
        module.write_text("SCALE = 2\ndef scale(x):\n    return x * SCALE\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        plain(ip, "import importlib, trapmod\nfrom trapmod import scale")
        body = "a = trapmod.scale(10)\nb = scale(10)\nc = trapmod.SCALE\n"
        cell(ip, body, "mod")
        assert (ip.user_ns["a"], ip.user_ns["b"], ip.user_ns["c"]) == (20, 20, 2)
        cell(ip, body, "mod")  # nothing changed: a hit
        module.write_text("SCALE = 3\ndef scale(x):\n    return x * SCALE\n")
        _bump_mtime(module)
        plain(ip, "importlib.reload(trapmod)\nfrom trapmod import scale")
        cell(ip, body, "mod")
        assert (ip.user_ns["a"], ip.user_ns["b"], ip.user_ns["c"]) == (30, 30, 3)
        assert "module 'trapmod' changed" in why(ip, "mod", capsys)
        plain(ip, "trapmod.SCALE = 4")  # set at run time, file unchanged
        cell(ip, body, "mod")
        assert (ip.user_ns["a"], ip.user_ns["c"]) == (40, 4)
        assert states(store) == ["Completed", "Cached", "Completed", "Completed"]

    def test_a_module_attribute_the_cell_sets_is_set_again_on_a_hit(
        self, ip: Any, store: Any, tmp_path: Path, monkeypatch: Any
    ) -> None:
        (tmp_path / "setmod.py").write_text("LEVEL = 1\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        twice(ip, "import setmod\nsetmod.LEVEL = 1", "setmod.LEVEL = 5\nok = True\n")
        assert states(store) == ["Completed", "Cached"]
        assert plain(ip, "setmod.LEVEL") == 5

    def test_autoreload_edits_are_a_miss(
        self, ip: Any, store: Any, tmp_path: Path, monkeypatch: Any
    ) -> None:
        module = tmp_path / "automod.py"
        module.write_text("def label():\n    return 'one'\n")
        monkeypatch.syspath_prepend(str(tmp_path))
        plain(ip, "%load_ext autoreload\n%autoreload 2\nfrom automod import label")
        try:
            cell(ip, "text = label()\n", "auto")
            module.write_text("def label():\n    return 'two'\n")
            _bump_mtime(module)
            plain(ip, "pass")  # autoreload patches the function before this cell
            cell(ip, "text = label()\n", "auto")
            assert ip.user_ns["text"] == "two"
        finally:
            plain(ip, "%autoreload 0")
        assert states(store) == ["Completed", "Completed"]

    def test_a_file_read_by_literal_path_is_keyed_on_its_content(
        self, ip: Any, store: Any, tmp_path: Path, monkeypatch: Any, capsys: Any
    ) -> None:
        monkeypatch.chdir(tmp_path)
        data = tmp_path / "data.csv"
        data.write_text("a\n1\n2\n")
        plain(ip, "import pandas as pd")
        body = "frame = pd.read_csv('data.csv')\ntotal = int(frame['a'].sum())\n"
        cell(ip, body, "load")
        data.write_text("a\n1\n2\n")  # touched, same content: still a hit
        _bump_mtime(data)
        cell(ip, body, "load")
        data.write_text("a\n1\n5\n")
        cell(ip, body, "load")
        assert ip.user_ns["total"] == 6
        assert "file 'data.csv' changed" in why(ip, "load", capsys)
        with open(tmp_path / "notes.txt", "w") as handle:
            handle.write("x")
        cell(ip, "text = open('notes.txt').read()\n", "notes")
        (tmp_path / "notes.txt").write_text("yy")
        cell(ip, "text = open('notes.txt').read()\n", "notes")
        assert ip.user_ns["text"] == "yy"
        assert states(store) == ["Completed", "Cached", "Completed", "Completed", "Completed"]

    def test_reads_flag_and_paths_held_by_variables(
        self, ip: Any, store: Any, tmp_path: Path, monkeypatch: Any
    ) -> None:
        monkeypatch.chdir(tmp_path)
        (tmp_path / "a.txt").write_text("1")
        (tmp_path / "b.txt").write_text("1")
        plain(ip, "path = 'a.txt'\ndef read_b():\n    return open('b.txt').read()")
        cell(ip, "got = (open(path).read(), read_b())\n", "--reads b.txt")
        (tmp_path / "a.txt").write_text("2")
        cell(ip, "got = (open(path).read(), read_b())\n", "--reads b.txt")
        assert ip.user_ns["got"] == ("2", "1")
        (tmp_path / "b.txt").write_text("3")
        cell(ip, "got = (open(path).read(), read_b())\n", "--reads b.txt")
        assert ip.user_ns["got"] == ("2", "3")
        assert states(store) == ["Completed", "Completed", "Completed"]


def _bump_mtime(path: Path) -> None:
    later = time.time() + 5
    os.utime(path, (later, later))


class TestGlobalState:
    def test_a_cell_drawing_from_a_seeded_generator_hits_and_advances_it(
        self, ip: Any, store: Any
    ) -> None:
        draws = []
        for _ in range(2):
            restart(ip)
            plain(ip, "import numpy as np\nimport random\nnp.random.seed(1)\nrandom.seed(1)")
            cell(ip, "x = np.random.rand()\ny = random.random()\n", "draw")
            draws.append(plain(ip, "(x, y, np.random.rand(), random.random())"))
        assert draws[0] == draws[1]
        assert states(store) == ["Completed", "Cached"]

    def test_another_generator_state_is_a_miss_that_says_why(
        self, ip: Any, store: Any, capsys: Any
    ) -> None:
        plain(ip, "import numpy as np\nnp.random.seed(1)")
        cell(ip, "x = np.random.rand()\n", "draw")
        first = ip.user_ns["x"]
        plain(ip, "np.random.seed(2)")
        cell(ip, "x = np.random.rand()\n", "draw")
        assert ip.user_ns["x"] != first
        assert "random generator 'numpy.random'" in why(ip, "draw", capsys)
        assert states(store) == ["Completed", "Completed"]

    def test_unseeded_randomness_is_never_frozen(self, ip: Any, store: Any) -> None:
        values = set()
        for _ in range(3):
            restart(ip)
            plain(ip, "import numpy as np\nimport random")
            cell(ip, "x = (np.random.rand(), random.random())\n", "noise")
            values.add(ip.user_ns["x"])
        assert len(values) == 3
        assert states(store) == ["Completed"] * 3

    def test_a_cell_that_seeds_first_hits_in_a_new_kernel(self, ip: Any, store: Any) -> None:
        body = "np.random.seed(0)\nsample = np.random.rand(3).tolist()\n"
        twice(ip, "import numpy as np", body)
        assert states(store) == ["Completed", "Cached"]
        expected = np.random.RandomState(0).rand(4).tolist()
        assert ip.user_ns["sample"] == expected[:3]
        assert plain(ip, "np.random.rand()") == expected[3]

    def test_print_options_are_part_of_the_key_of_cells_that_display(
        self, ip: Any, store: Any, capsys: Any
    ) -> None:
        plain(ip, "import numpy as np\nvalues = np.array([1 / 3])")
        cell(ip, "print(values)\n", "show")
        plain(ip, "np.set_printoptions(precision=3)")
        capsys.readouterr()
        cell(ip, "print(values)\n", "show")
        assert capsys.readouterr().out.strip() == "[0.333]"
        plain(ip, "np.set_printoptions(precision=8)")
        assert states(store) == ["Completed", "Completed"]

    def test_options_a_cell_sets_are_set_again_on_a_hit(self, ip: Any, store: Any) -> None:
        try:
            twice(ip, "import numpy as np", "np.set_printoptions(precision=2)\nok = 1\n")
            assert states(store) == ["Completed", "Cached"]
            assert plain(ip, "np.get_printoptions()['precision']") == 2
        finally:
            plain(ip, "np.set_printoptions(precision=8)")

    def test_options_of_a_module_not_imported_are_its_defaults(self, monkeypatch: Any) -> None:
        import sys

        import pandas as pd

        from kernelflow.kernel import hidden_state

        with hidden_state.RunWatch() as watch:
            pass
        needed = watch.effects(displayed=True, displayed_image=False).to_manifest()
        assert needed is not None and "pandas options" in needed["at_default"]
        # A new kernel where nothing imported pandas yet: it would start at the defaults.
        monkeypatch.delitem(sys.modules, "pandas")
        assert hidden_state.check(needed) is None
        needed["at_default"] = []
        assert "were not the defaults" in hidden_state.check(needed)
        monkeypatch.setitem(sys.modules, "pandas", pd)


class TestIdentity:
    def test_shared_references_stay_shared(self, ip: Any, store: Any) -> None:
        twice(ip, "base = [0]", "a = b = [1]\nd = {'k': a, 'base': base}\nsame = base\n")
        ns = ip.user_ns
        assert states(store) == ["Completed", "Cached"]
        assert ns["a"] is ns["b"] is ns["d"]["k"]
        assert ns["d"]["base"] is ns["base"] and ns["same"] is ns["base"]

    def test_a_figure_and_its_axes_stay_one_figure(self, ip: Any, store: Any) -> None:
        setup = "import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt"
        twice(ip, setup, "fig, ax = plt.subplots()\nax.plot([1, 2])\nplt.close(fig)\n")
        assert states(store) == ["Completed", "Cached"]
        assert ip.user_ns["fig"].axes[0] is ip.user_ns["ax"]

    def test_a_part_of_an_input_comes_back_as_that_part(self, ip: Any, store: Any) -> None:
        setup = "pipe = {'steps': [['scale', {'k': 1}], ['fit', {'k': 2}]]}"
        twice(ip, setup, "first = pipe['steps'][0][1]\n")
        assert states(store) == ["Completed", "Cached"]
        assert ip.user_ns["first"] is ip.user_ns["pipe"]["steps"][0][1]

    def test_a_view_of_an_input_array_shares_its_memory(self, ip: Any, store: Any) -> None:
        twice(ip, "import numpy as np\nx = np.arange(12.0).reshape(3, 4)", "col = x[:, 1]\n")
        assert states(store) == ["Completed", "Cached"]
        ns = ip.user_ns
        assert np.shares_memory(ns["col"], ns["x"])
        ns["x"][0, 1] = 99
        assert ns["col"][0] == 99

    def test_an_open_file_is_never_cached(self, ip: Any, store: Any, tmp_path: Path) -> None:
        ip.user_ns["where"] = str(tmp_path / "out.txt")
        for _ in range(2):
            with pytest.warns(CacheWarning, match=r"'handle': an open file"):
                cell(ip, "handle = open(where, 'w')\nrows = 3\n")
            ip.user_ns["handle"].close()
        assert states(store) == ["Completed", "Completed"]

    def test_a_generator_input_runs_uncached_with_one_warning(self, ip: Any, store: Any) -> None:
        plain(ip, "gen = (i for i in range(5))")
        with pytest.warns(CacheWarning, match=r"'gen': generator, cannot be hashed") as caught:
            cell(ip, "first = next(gen)\n")
        assert len(caught) == 1
        with pytest.warns(CacheWarning):
            cell(ip, "first = next(gen)\n")
        assert ip.user_ns["first"] == 1


class TestWhy:
    def test_a_code_change_is_named_first(self, ip: Any, store: Any, capsys: Any) -> None:
        plain(ip, "import numpy as np\nn = 2")
        cell(ip, "v = n\n", "v")
        cell(ip, "v = np.sqrt(n)\n", "v")
        out = why(ip, "v", capsys)
        reasons = [line.strip() for line in out.splitlines() if line.strip().startswith("- ")]
        assert reasons[0].startswith("- the code changed")
        assert not any("'np' is new" in line for line in reasons)

    def test_a_hit_says_so_and_from_when(self, ip: Any, store: Any, capsys: Any) -> None:
        plain(ip, "n = 2")
        cell(ip, "v = n\n", "v")
        cell(ip, "v = n\n", "v")
        out = why(ip, "v", capsys)
        assert "used its cache on its last run (a cached run from" in out
        assert "Nothing it depends on changed since." in out


class TestWhatKernelflowCannotSee:
    def test_shell_commands_and_magics_run_uncached_saying_why(
        self, ip: Any, store: Any, capsys: Any
    ) -> None:
        for body in ("listing = !echo hi\n", "%whos\nseen = 1\n"):
            for _ in range(2):
                with pytest.warns(CacheWarning, match=r"which reads what kernelflow cannot see"):
                    cell(ip, body, "opaque")
        assert states(store) == ["Completed"] * 4
        assert "runs uncached, because" in why(ip, "opaque", capsys)

    def test_configuring_magics_are_cached(self, ip: Any, store: Any) -> None:
        cell(ip, "%config InteractiveShell.ast_node_interactivity = 'last_expr'\nn = 1\n")
        cell(ip, "%config InteractiveShell.ast_node_interactivity = 'last_expr'\nn = 1\n")
        assert states(store) == ["Completed", "Cached"]

    def test_a_helper_class_using_super_is_hashed(self, ip: Any, store: Any) -> None:
        plain(
            ip,
            """
            class Base:
                def size(self):
                    return 1
            class Child(Base):
                def size(self):
                    return super().size() + 1
            """,
        )
        cell(ip, "n = Child().size()\n")
        cell(ip, "n = Child().size()\n")
        assert ip.user_ns["n"] == 2
        assert states(store) == ["Completed", "Cached"]

    def test_dict_kinds_changed_in_place_come_back(self, ip: Any, store: Any) -> None:
        setup = (
            "import collections\ngroups = collections.defaultdict(list)\n"
            "counts = collections.Counter()\nordered = collections.OrderedDict(a=1)"
        )
        body = "groups['x'].append(1)\ncounts['y'] += 2\nordered['b'] = 2\n"
        twice(ip, setup, body)
        assert states(store) == ["Completed", "Cached"]
        ns = ip.user_ns
        assert ns["groups"] == {"x": [1]} and ns["groups"].default_factory is list
        assert ns["counts"] == {"y": 2} and list(ns["ordered"]) == ["a", "b"]


class TestFilesWritten:
    def test_a_hit_writes_back_the_files_the_cell_wrote(
        self, ip: Any, store: Any, tmp_path: Path, monkeypatch: Any
    ) -> None:
        monkeypatch.chdir(tmp_path)
        setup = "import numpy as np\nimport pandas as pd\nvalues = np.arange(4)"
        body = (
            "np.save('squares', values ** 2)\n"
            "pd.DataFrame({'v': values}).to_csv('table.csv', index=False)\n"
            "with open('notes.txt', 'w') as handle:\n"
            "    handle.write('done')\n"
        )
        for name in ("squares.npy", "table.csv", "notes.txt"):
            (tmp_path / name).unlink(missing_ok=True)
        restart(ip)
        plain(ip, setup)
        cell(ip, body, "save")
        written = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        for path in tmp_path.iterdir():
            path.unlink()
        (tmp_path / "notes.txt").write_text("edited by hand")
        restart(ip)
        plain(ip, setup)
        cell(ip, body, "save")
        assert states(store) == ["Completed", "Cached"]
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == written
        assert plain(ip, "np.load('squares.npy').tolist()") == [0, 1, 4, 9]

    def test_appending_to_a_file_keys_on_what_was_in_it(
        self, ip: Any, store: Any, tmp_path: Path, monkeypatch: Any
    ) -> None:
        monkeypatch.chdir(tmp_path)
        body = "with open('log.txt', 'a') as handle:\n    handle.write('x')\n"
        for _ in range(3):
            cell(ip, body, "append")
        assert (tmp_path / "log.txt").read_text() == "xxx"
        assert states(store) == ["Completed"] * 3
