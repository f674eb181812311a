"""``%%task`` and ``%kf`` on a real IPython shell."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from IPython.core.error import UsageError
from kernel_helpers import plain

from kernelflow.errors import CacheWarning, CellSyntaxError, QueryError, TaskRunTimeout


def cell(ip: Any, body: str, line: str = "") -> Any:
    """Run a %%task cell as the shell would; return the value it shows as Out."""
    return ip.run_cell_magic("task", line, textwrap.dedent(body))


def settle(ip: Any) -> None:
    """Wait until cache entries written after the cells returned are on disk."""
    from kernelflow.kernel import runner_of

    runner_of(ip).writer.wait()


def runs(store: Any) -> Any:
    return store.sql("SELECT * FROM task_runs ORDER BY created, id")


class TestLoading:
    def test_load_ext_prints_nothing_and_imports_nothing_heavy(self, run_python: Any) -> None:
        proc = run_python("""
            import sys
            from IPython.core.interactiveshell import InteractiveShell
            ip = InteractiveShell.instance()
            ip.run_line_magic("load_ext", "kernelflow")
            heavy = [m for m in ("duckdb", "pandas", "pyarrow", "ipywidgets", "papermill")
                     if m in sys.modules]
            print("HEAVY", heavy)
            assert "task" in ip.magics_manager.magics["cell"]
            assert "kf" in ip.magics_manager.magics["line"]
        """)
        assert proc.stdout == "HEAVY []\n"
        assert proc.stderr == ""

    def test_help_shows_the_flags(self, ip: Any) -> None:
        doc = ip.magics_manager.magics["cell"]["task"].__doc__
        for flag in (
            "--retries",
            "--retry-delay",
            "--timeout",
            "--no-cache",
            "--expire",
            "--refresh",
            "--tags",
            "--exclude",
            "--concurrency",
        ):
            assert flag in doc

    def test_unload_removes_the_magics(self, ip: Any) -> None:
        ip.run_line_magic("unload_ext", "kernelflow")
        assert "task" not in ip.magics_manager.magics["cell"]
        ip.run_line_magic("load_ext", "kernelflow")
        assert "task" in ip.magics_manager.magics["cell"]

    def test_loading_registers_the_pause_form_and_unloading_removes_it(self, ip: Any) -> None:
        from kernelflow._pause_hooks import pause_presenter
        from kernelflow.kernel import show_pause_form

        assert pause_presenter() is show_pause_form
        ip.run_line_magic("unload_ext", "kernelflow")
        assert pause_presenter() is None
        ip.run_line_magic("load_ext", "kernelflow")
        assert pause_presenter() is show_pause_form


class TestRunsLikeACell:
    def test_names_are_defined_in_the_namespace(self, ip: Any) -> None:
        ip.user_ns["pairs"] = [(1, 2), (3, 4)]
        cell(
            ip,
            """
            import math
            def area(r):
                return math.pi * r ** 2
            class Box:
                size = 3
            a, (b, c) = 1, (2, 3)
            total = 0
            for x, y in pairs:
                total += x * y
            total += 1
        """,
        )
        ns = ip.user_ns
        assert ns["area"](1) == pytest.approx(3.14159, rel=1e-4)
        assert ns["Box"].size == 3
        assert (ns["a"], ns["b"], ns["c"], ns["total"], ns["x"], ns["y"]) == (1, 2, 3, 15, 3, 4)

    def test_final_expression_is_the_value(self, ip: Any) -> None:
        assert cell(ip, "n = 20\nn + 1\n") == 21
        assert cell(ip, "n + 2;\n") is None  # a trailing semicolon hides it, as in IPython

    def test_line_magics_inside_the_cell_work(self, ip: Any) -> None:
        # %env changes what kernelflow cannot see: such a cell runs, uncached, saying so.
        with pytest.warns(CacheWarning, match="'%env': a magic"):
            cell(ip, "%env KF_TEST_VAR=7\nvalue = __import__('os').environ['KF_TEST_VAR']\n")
        assert ip.user_ns["value"] == "7"

    def test_top_level_await(self, ip: Any) -> None:
        assert (
            cell(
                ip,
                """
            import asyncio
            await asyncio.sleep(0)
            got = await asyncio.sleep(0, result=5)
            got * 2
        """,
            )
            == 10
        )
        assert ip.user_ns["got"] == 5


class TestCaching:
    def test_second_run_is_a_hit_that_restores_and_replays(
        self, ip: Any, store: Any, capsys: Any
    ) -> None:
        ip.user_ns["n"] = 3
        body = "print('computing', n)\ny = n * 2\ny + 1\n"
        assert cell(ip, body) == 7
        assert "computing 3" in capsys.readouterr().out
        del ip.user_ns["y"]
        value = cell(ip, body)
        out = capsys.readouterr().out
        assert ip.user_ns["y"] == 6
        assert repr(value) == "7"
        assert "computing 3" in out  # replayed
        assert "cached · took" in out and "ran" in out
        states = runs(store)["state_name"].tolist()
        assert states == ["Completed", "Cached"]

    def test_comments_and_layout_do_not_miss(self, ip: Any, store: Any) -> None:
        ip.user_ns["n"] = 1
        cell(ip, "y = n * 2\n")
        cell(ip, "# doubled\ny  =  n*2   # same code\n\n")
        assert runs(store)["state_name"].tolist() == ["Completed", "Cached"]

    def test_changed_input_misses_and_why_names_it(self, ip: Any, store: Any, capsys: Any) -> None:
        ip.user_ns.update(n=3, m=1)
        cell(ip, "y = n * 2 + m\n")
        ip.user_ns["n"] = 4
        ip.run_line_magic("kf", "why y")
        assert "input 'n' changed" in capsys.readouterr().out
        cell(ip, "y = n * 2 + m\n")
        assert ip.user_ns["y"] == 9
        ip.run_line_magic("kf", "why y")
        out = capsys.readouterr().out
        assert "did not use the cache" in out
        assert "input 'n' changed" in out
        assert "'m'" not in out

    def test_changed_helper_misses_and_why_names_it(self, ip: Any, capsys: Any) -> None:
        ip.run_cell("def scale(v):\n    return v * 10\n")
        ip.run_cell("def clean(v):\n    return scale(v) + 1\n")
        ip.user_ns["n"] = 2
        cell(ip, "z = clean(n)\n")
        assert ip.user_ns["z"] == 21
        ip.run_cell("def scale(v):\n    return v * 100\n")
        cell(ip, "z = clean(n)\n")
        assert ip.user_ns["z"] == 201
        ip.run_line_magic("kf", "why z")
        assert "helper 'scale' changed" in capsys.readouterr().out

    def test_why_in_a_new_session_points_at_the_last_cached_run(self, ip: Any, capsys: Any) -> None:
        ip.user_ns["n"] = 2
        cell(ip, "w = n + 1\n", "widen")
        ip.run_line_magic("unload_ext", "kernelflow")  # waits for the cache entry
        ip.run_line_magic("load_ext", "kernelflow")  # a new session, as after a restart
        capsys.readouterr()
        ip.run_line_magic("kf", "why widen")
        out = capsys.readouterr().out
        assert "has not run in this kernel yet; its last cached run was" in out
        ip.user_ns["n"] = 3
        cell(ip, "w = n + 1\n", "widen")
        ip.run_line_magic("kf", "why widen")
        assert "input 'n' changed" in capsys.readouterr().out

    def test_code_change_is_explained(self, ip: Any, capsys: Any) -> None:
        ip.user_ns["n"] = 2
        cell(ip, "w = n + 1\n", "widen")
        cell(ip, "w = n + 2\n", "widen")
        ip.run_line_magic("kf", "why widen")
        out = capsys.readouterr().out
        assert "the code changed" in out
        assert "- w = n + 1" in out and "+ w = n + 2" in out

    def test_displays_are_replayed(self, ip: Any) -> None:
        from IPython.core.displaypub import CapturingDisplayPublisher

        publisher = ip.display_pub
        ip.display_pub = CapturingDisplayPublisher()
        try:
            body = (
                "from IPython.display import display\n"
                "display({'text/html': '<b>hi</b>', 'text/plain': 'hi'}, raw=True)\nk = 1\n"
            )
            cell(ip, body)
            cell(ip, body)
            shown = [o["data"] for o in ip.display_pub.outputs]
        finally:
            ip.display_pub = publisher
        assert [d["text/html"] for d in shown] == ["<b>hi</b>", "<b>hi</b>"]

    def test_a_cell_running_a_cell_records_both_and_restores_the_publisher(self, ip: Any) -> None:
        from IPython.core.displaypub import CapturingDisplayPublisher

        publisher = ip.display_pub
        ip.display_pub = CapturingDisplayPublisher()
        show = "display({'text/plain': %r}, raw=True)"
        body = (
            "from IPython.display import display\n"
            f"{show % 'outer'}\n"
            "get_ipython().run_cell_magic('task', 'inner --no-cache', "
            f"{(show % 'inner') + chr(10)!r})\n"
            f"{show % 'after'}\n"
        )
        try:
            # The inner cell is code the outer one cannot see into: it runs uncached.
            with pytest.warns(CacheWarning, match="'%%task': a magic"):
                cell(ip, body, "outer")
            assert "publish" not in vars(ip.display_pub)
            with pytest.warns(CacheWarning):
                cell(ip, body, "outer")
            assert "publish" not in vars(ip.display_pub)
            shown = [o["data"]["text/plain"] for o in ip.display_pub.outputs]
        finally:
            ip.display_pub = publisher
        assert shown == ["outer", "inner", "after", "outer", "inner", "after"]

    def test_unpicklable_output_runs_uncached_with_one_warning(
        self, ip: Any, store: Any, tmp_path: Any
    ) -> None:
        ip.user_ns["path"] = str(tmp_path / "f.txt")
        body = "handle = open(path, 'w')\nrows = 3\n"
        with pytest.warns(CacheWarning, match="'handle'") as caught:
            cell(ip, body)
        assert len(caught) == 1
        assert "--no-cache" in str(caught[0].message)
        with pytest.warns(CacheWarning):
            cell(ip, body)
        ip.user_ns["handle"].close()
        assert runs(store)["state_name"].tolist() == ["Completed", "Completed"]

    def test_unhashable_input_runs_uncached_naming_it_and_exclude_works(
        self, ip: Any, store: Any
    ) -> None:
        import threading

        # The same rule as an output that cannot be saved: the cell runs, uncached, warned.
        ip.user_ns["lock"] = threading.Lock()
        with pytest.warns(CacheWarning, match=r"'lock': _thread.lock.*--exclude NAME") as caught:
            assert cell(ip, "with lock:\n    got = 1\ngot\n") == 1
        assert len(caught) == 1
        for _ in range(2):
            ip.user_ns.pop("got")
            cell(ip, "with lock:\n    got = 2\n", "--exclude lock")
            assert ip.user_ns["got"] == 2
        assert cell(ip, "with lock:\n    got = 3\ngot\n", "--no-cache") == 3
        states = runs(store)["state_name"].tolist()
        assert states == ["Completed", "Completed", "Cached", "Completed"]

    def test_hostile_variable_is_reported_clearly(self, ip: Any) -> None:
        ip.run_cell(
            textwrap.dedent("""
            class Hostile:
                def __getattr__(self, name):
                    raise RuntimeError("no attribute access for you")
                def __reduce_ex__(self, protocol):
                    raise RuntimeError("cannot pickle me")
            trap = Hostile()
        """)
        )
        with pytest.warns(CacheWarning, match="'trap'"):
            assert cell(ip, "seen = trap is not None\nseen\n") is True
        assert cell(ip, "seen = trap is not None\nseen\n", "--exclude trap") is True

    def test_no_cache_refresh_and_expire(self, ip: Any, store: Any) -> None:
        ip.user_ns["n"] = 1
        cell(ip, "v = n\n", "--no-cache")
        cell(ip, "v = n\n", "--no-cache")
        cell(ip, "v = n\n")
        cell(ip, "v = n\n", "--refresh")
        cell(ip, "v = n\n")
        assert runs(store)["state_name"].tolist() == [
            "Completed",
            "Completed",
            "Completed",
            "Completed",
            "Cached",
        ]
        settle(ip)
        cached = store.sql("SELECT expires FROM cache_entries WHERE NOT deleted")
        assert cached["expires"].isna().all()
        cell(ip, "v = n + 1\n", "--expire 2h")
        settle(ip)
        expiring = store.sql(
            "SELECT epoch(expires) - epoch(created) AS s FROM cache_entries "
            "WHERE expires IS NOT NULL"
        )
        assert expiring["s"].tolist() == [pytest.approx(7200, abs=5)]

    def test_a_pending_write_is_dropped_when_the_store_changes(
        self, ip: Any, tmp_path: Any
    ) -> None:
        import threading

        from kernelflow import settings
        from kernelflow.kernel import runner_of

        writer = runner_of(ip).writer
        gate = threading.Event()
        writer.submit("hold the writer", gate.wait)
        ip.user_ns["n"] = 1
        cell(ip, "v = n\n")
        other = tmp_path / "other-store"
        previous = settings.use_home(other)
        try:
            gate.set()
            writer.wait()
        finally:
            settings.use_home(previous)
        assert not other.exists()

    def test_cache_clear(self, ip: Any, capsys: Any) -> None:
        ip.user_ns["n"] = 1
        cell(ip, "v = n\n", "keep")
        cell(ip, "u = n\n", "drop")
        settle(ip)
        ip.run_line_magic("kf", "cache clear drop")
        assert "Removed 1 cache entry of 'drop'" in capsys.readouterr().out
        ip.run_line_magic("kf", "cache")
        out = capsys.readouterr().out
        assert "keep" in out and "drop" not in out


class TestBadInput:
    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("--retries x", "'x' is not a whole number"),
            ("--expire soon", "'soon' is not a duration"),
            ("--timeout -1", "is not a number of seconds"),
            ("--frobnicate", "unrecognized arguments: --frobnicate"),
        ],
    )
    def test_bad_flags_are_usage_errors_with_the_usage_line(
        self, ip: Any, line: str, message: str
    ) -> None:
        with pytest.raises(UsageError) as caught:
            ip.run_cell_magic("task", line, "a = 1\n")
        text = str(caught.value)
        assert message in text
        assert "usage: %%task [--retries N]" in text

    def test_empty_body(self, ip: Any) -> None:
        with pytest.raises(UsageError, match="needs code"):
            ip.run_cell_magic("task", "", "\n  \n")

    def test_syntax_error_shows_the_cell_line_and_the_shell_goes_on(
        self, ip: Any, store: Any
    ) -> None:
        with pytest.raises(CellSyntaxError) as caught:
            cell(ip, "a = 1\nb = (\n")
        assert isinstance(caught.value.syntax_error, SyntaxError)
        assert caught.value.syntax_error.lineno == 3  # the %%task line is line 1
        rendered = "\n".join(caught.value._render_traceback_())
        assert "SyntaxError" in rendered and "b = (" in rendered
        assert "kernelflow" not in rendered

    def test_syntax_error_in_the_shell_shows_no_kernelflow_frame(
        self, ip: Any, store: Any, capsys: Any
    ) -> None:
        result = ip.run_cell("%%task\nx = (1,\ny = 2\n")
        shown = capsys.readouterr()
        assert isinstance(result.error_in_exec, CellSyntaxError)
        assert "SyntaxError" in shown.out + shown.err
        assert "kernelflow" not in shown.out + shown.err
        assert "run_cell_magic" not in shown.out + shown.err
        assert cell(ip, "a = 1\na\n") == 1

    def test_failing_cell_raises_the_users_error_with_only_user_frames(
        self, ip: Any, store: Any
    ) -> None:
        with pytest.raises(ZeroDivisionError) as caught:
            cell(ip, "def f(a):\n    return a / 0\nq = f(1)\n")
        rendered = plain("\n".join(caught.value._render_traceback_()))
        assert "----> 4 q = f(1)" in rendered  # line 1 of the cell is the %%task line
        assert "----> 3     return a / 0" in rendered
        assert "kernelflow/" not in rendered and "engine.py" not in rendered
        failed = runs(store)
        assert failed["state_name"].tolist() == ["Failed"]
        assert "ZeroDivisionError: division by zero" in failed["state_message"][0]

    def test_kf_unknown_command(self, ip: Any) -> None:
        with pytest.raises(UsageError, match="unknown command 'nope'"):
            ip.run_line_magic("kf", "nope")
        with pytest.raises(UsageError, match="No %%task cell named 'ghost'"):
            ip.run_line_magic("kf", "why ghost")


class TestRetriesAndTimeouts:
    def test_retries(self, ip: Any, store: Any) -> None:
        body = """
            tries = globals().get('tries', 0) + 1
            if tries < 3:
                raise ValueError('flaky')
        """
        cell(ip, body, "--retries 2 --no-cache")
        assert ip.user_ns["tries"] == 3
        row = runs(store).iloc[0]
        assert (row["state_name"], row["run_count"]) == ("Completed", 3)

    def test_timeout(self, ip: Any, store: Any) -> None:
        with pytest.raises(TaskRunTimeout, match=r"exceeded its timeout of 0\.3"):
            cell(
                ip,
                "import time\nfor _ in range(200):\n    time.sleep(0.01)\n",
                "slow --timeout 0.3",
            )
        row = runs(store).iloc[0]
        assert (row["name"], row["state_name"]) == ("slow-0", "TimedOut")


class TestConcurrency:
    def test_the_cell_holds_a_slot_of_the_limit_while_it_runs(self, ip: Any) -> None:
        from kernelflow.concurrency import create_limit, limit_status

        create_limit("kf-test-api", 1)
        ip.user_ns["limit_status"] = limit_status
        held = cell(
            ip,
            "held = limit_status('kf-test-api').occupied\nheld\n",
            "--concurrency kf-test-api --no-cache",
        )
        assert held == 1
        assert limit_status("kf-test-api").occupied == 0

    def test_an_unknown_limit_is_an_error_that_names_it(self, ip: Any) -> None:
        from kernelflow.errors import LimitNotFoundError

        with pytest.raises(LimitNotFoundError, match="no-such-limit"):
            cell(ip, "x = 1\n", "--concurrency no-such-limit")


class TestLineageAndStaleness:
    def test_inputs_outputs_and_upstream_are_in_the_store(self, ip: Any, store: Any) -> None:
        ip.user_ns["base"] = 5
        cell(ip, "a = base * 2\n", "make_a")
        cell(ip, "b = a + 1\n", "make_b")
        rows = store.sql(
            "SELECT name, task_name, inputs, outputs, id FROM task_runs ORDER BY created"
        )
        import json

        first, second = rows.to_dict("records")
        assert json.loads(first["outputs"]).keys() == {"a"}
        inputs_b = json.loads(second["inputs"])
        assert inputs_b["a"]["upstream"] == first["id"]
        assert inputs_b["a"]["hash"] == json.loads(first["outputs"])["a"]
        assert json.loads(first["inputs"])["base"]["upstream"] is None
        session = store.sql(
            "SELECT f.flow_name FROM flow_runs f JOIN task_runs t ON t.flow_run_id = f.id LIMIT 1"
        )
        assert session["flow_name"][0] == "ipython-session"

    def test_stale_cells_in_dependency_order_and_rerun(self, ip: Any, capsys: Any) -> None:
        ip.user_ns["base"] = 5
        cell(ip, "a = base * 2\n", "make_a")
        cell(ip, "b = a + 1\n", "make_b")
        cell(ip, "c = b * 10\nc\n", "make_c")
        cell(ip, "other = base - 1\n", "make_other")
        ip.run_line_magic("kf", "stale")
        assert "No stale cells." in capsys.readouterr().out
        ip.user_ns["base"] = 6
        cell(ip, "a = base * 2\n", "make_a")
        ip.run_line_magic("kf", "stale")
        out = capsys.readouterr().out
        assert out.index("1. make_b") < out.index("2. make_c")
        assert "make_other" not in out
        assert "'a' changed" in out
        ip.run_line_magic("kf", "rerun")
        out = capsys.readouterr().out
        assert ip.user_ns["b"] == 13 and ip.user_ns["c"] == 130
        assert out.index("rerun make_b") < out.index("rerun make_c")
        assert "130" in out
        ip.run_line_magic("kf", "stale")
        assert "No stale cells." in capsys.readouterr().out

    def test_info(self, ip: Any, capsys: Any) -> None:
        ip.user_ns["base"] = 5
        cell(ip, "a = base * 2\n", "make_a")
        ip.run_line_magic("kf", "info a")  # by variable name too
        out = capsys.readouterr().out
        assert "cell 'make_a': Completed" in out
        assert "base =" in out and "a =" in out

    def test_cell_ids_keep_names_and_tell_cells_apart(self, ip: Any) -> None:
        ip.run_cell("%%task\nresult = 1\n", cell_id="cell-one")
        ip.run_cell("%%task\nresult = 2\nextra = 3\n", cell_id="cell-one")
        ip.run_cell("%%task\nresult = 4\n", cell_id="cell-two")
        from kernelflow.kernel import runner_of

        assert sorted(runner_of(ip).lineage.cells) == ["result", "result-2"]


class TestSessionRun:
    def test_top_level_tasks_and_submit_are_recorded_under_the_session(
        self, ip: Any, store: Any
    ) -> None:
        ip.run_cell(
            textwrap.dedent("""
            from kernelflow import flow, task
            @task
            def double(x):
                return 2 * x
            @flow
            def pipeline():
                return double(1)
            direct = double(4)
            later = double.submit(5).result()
            nested = pipeline()
        """)
        )
        assert (ip.user_ns["direct"], ip.user_ns["later"], ip.user_ns["nested"]) == (8, 10, 2)
        rows = store.sql(
            "SELECT t.name, f.flow_name, f.state_name FROM task_runs t "
            "JOIN flow_runs f ON t.flow_run_id = f.id WHERE f.parent_flow_run_id IS NULL "
            "ORDER BY t.created"
        )
        assert rows["flow_name"].tolist() == ["ipython-session", "ipython-session"]
        assert rows["state_name"].tolist() == ["Running", "Running"]
        flows = store.sql(
            "SELECT f.flow_name, p.flow_name AS parent FROM flow_runs f "
            "JOIN flow_runs p ON f.parent_flow_run_id = p.id"
        )
        assert flows.to_dict("records") == [{"flow_name": "pipeline", "parent": "ipython-session"}]
        ip.run_line_magic("unload_ext", "kernelflow")
        ended = store.sql("SELECT state_name FROM flow_runs WHERE parent_flow_run_id IS NULL")
        assert ended["state_name"].tolist() == ["Completed"]
        ip.run_line_magic("load_ext", "kernelflow")

    def test_verbose_prints_inputs_and_outputs(self, ip: Any, capsys: Any) -> None:
        ip.user_ns["n"] = 1
        cell(ip, "quiet = n\n")
        assert capsys.readouterr().err == ""
        cell(ip, "loud = n + 1\n", "--verbose")
        assert "inputs: n · outputs: loud" in capsys.readouterr().err


def test_sql_returns_a_dataframe(ip: Any) -> None:
    ip.user_ns["n"] = 1
    cell(ip, "v = n\n")
    frame = ip.run_line_magic("kf", "sql SELECT name, state_name FROM task_runs")
    assert frame.to_dict("records") == [{"name": "v-0", "state_name": "Completed"}]
    with pytest.raises(QueryError, match="Parser Error"):
        ip.run_line_magic("kf", "sql SELEC nonsense")


def test_runs_lists_this_sessions_task_runs(ip: Any, capsys: Any) -> None:
    ip.user_ns["n"] = 1
    cell(ip, "v = n\n", "first")
    ip.run_line_magic("kf", "runs")
    out = capsys.readouterr().out
    assert "first-0" in out and "Completed" in out
