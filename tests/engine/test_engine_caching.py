"""Task caching: policies, keys, expiration, refresh.

Part of the engine against Prefect 3.9's observed semantics
(shared/notes/prefect-semantics.md), one class per feature. Timings are only ever
lower bounds (a delay really happened); speed is measured in ``bench/``, never
asserted here.
"""

from __future__ import annotations

import time

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow.states import StateType


# --- Caching -------------------------------------------------------------------------
def _versioned(body: str, policy):
    """A task ``compute`` whose source is ``body``, always with the same identity."""
    namespace: dict = {}
    exec(f"def compute(x):\n    CALLS.append(x)\n    {body}\n", namespace)
    fn = namespace["compute"]
    fn.__module__, fn.__qualname__ = __name__, "compute"
    namespace["CALLS"] = CALLS
    return task(cache_policy=policy)(fn)


CALLS: list = []


class TestCaching:
    @pytest.fixture(autouse=True)
    def _clear_calls(self):
        CALLS.clear()

    def test_off_by_default(self):
        @task
        def t(x):
            CALLS.append(x)
            return x

        @flow
        def f():
            return t(1), t(1)

        assert f() == (1, 1)
        assert CALLS == [1, 1]

    def test_inputs_within_and_across_flow_runs(self):
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def t(x, y=0):
            CALLS.append(x)
            return x * 10 + y

        @flow
        def f():
            return [t(1, return_state=True), t(1, return_state=True), t(2, return_state=True)]

        first = f()
        assert [s.name for s in first] == ["Completed", "Cached", "Completed"]
        assert [s.result() for s in first] == [10, 10, 20]
        second = f()
        assert [s.name for s in second] == ["Cached", "Cached", "Cached"]
        assert all(s.type is StateType.COMPLETED for s in second)
        assert CALLS == [1, 2]
        assert t(1, y=1) == 11  # another value of another argument: a miss
        assert CALLS == [1, 2, 1]

    def test_task_source_is_part_of_the_key(self):
        from kernelflow.cache_policies import INPUTS, TASK_SOURCE

        assert _versioned("return x + 1", INPUTS)(1) == 2
        # Same identity and inputs, new source: INPUTS alone reuses the stale result ...
        assert _versioned("return x + 2", INPUTS)(1) == 2
        # ... INPUTS + TASK_SOURCE recomputes when the code changes.
        assert _versioned("return x + 1", INPUTS + TASK_SOURCE)(1) == 2
        assert _versioned("return x + 2", INPUTS + TASK_SOURCE)(1) == 3
        assert _versioned("return x + 2", INPUTS + TASK_SOURCE)(1) == 3
        assert CALLS == [1, 1, 1]

    def test_excluding_an_argument(self):
        import threading as th

        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS - "conn")
        def query(sql, conn):
            CALLS.append(sql)
            return sql.upper()

        # A lock cannot be hashed; excluded from the key, it does not need to be.
        assert query("a", th.Lock()) == "A"
        assert query("a", th.Lock()) == "A"
        assert query("b", th.Lock()) == "B"
        assert CALLS == ["a", "b"]

    def test_task_input_hash(self):
        from kernelflow.tasks import task_input_hash

        @task(cache_key_fn=task_input_hash)
        def t(x):
            CALLS.append(x)
            return {"x": x}

        @flow
        def f(x):
            return t(x)

        assert f(1) == {"x": 1} and f(1) == {"x": 1} and f(2) == {"x": 2}
        assert CALLS == [1, 2]

    def test_cache_key_fn_none_means_no_caching(self):
        @task(cache_key_fn=lambda ctx, args: None if args["x"] < 0 else f"k{args['x']}")
        def t(x):
            CALLS.append(x)
            return x

        for x in (1, 1, -1, -1):
            t(x)
        assert CALLS == [1, -1, -1]

    def test_cache_key_fn_gets_context_and_arguments(self):
        seen = []

        def key_fn(ctx, arguments):
            seen.append((ctx.task.name, dict(arguments)))
            return "fixed"

        @task(cache_key_fn=key_fn)
        def t(a, b=2):
            return a + b

        assert t(1) == 3
        assert t(5) == 3  # the key ignores the inputs: the first result is reused
        assert seen == [("t", {"a": 1, "b": 2}), ("t", {"a": 5, "b": 2})]

    def test_two_tasks_with_equal_inputs_do_not_share(self):
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def one(x):
            return "one"

        @task(cache_policy=INPUTS)
        def two(x):
            return "two"

        assert (one(1), two(1)) == ("one", "two")

    def test_cache_expiration(self):
        from datetime import timedelta

        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=0.3))
        def t(x):
            CALLS.append(x)
            return len(CALLS)

        assert t(1) == 1
        assert t(1) == 1
        time.sleep(0.35)
        assert t(1) == 2  # expired: recomputed
        assert t(1) == 2

    def test_refresh_cache(self):
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def t(x):
            CALLS.append(x)
            return len(CALLS)

        refreshing = t.with_options(refresh_cache=True)
        assert t(1) == 1
        assert refreshing(1) == 2  # runs although cached, and replaces the entry
        assert t(1) == 2
        assert CALLS == [1, 1]

    def test_run_id_policy_reuses_only_within_a_flow_run(self):
        from kernelflow.cache_policies import DEFAULT

        @task(cache_policy=DEFAULT)
        def t(x):
            CALLS.append(x)
            return x

        @flow
        def f():
            return t(1), t(1)

        f()
        f()
        assert CALLS == [1, 1]

    def test_no_cache_policy(self):
        from kernelflow.cache_policies import NO_CACHE

        @task(cache_policy=NO_CACHE)
        def t(x):
            CALLS.append(x)

        t(1)
        t(1)
        assert CALLS == [1, 1]

    def test_cached_state_recorded(self):
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def t(x):
            return x

        @flow
        def f():
            t(1)
            t(1)

        f()
        rows = kernelflow.sql(
            "SELECT name, state_type, state_name, cache_key IS NOT NULL AS keyed "
            "FROM task_runs ORDER BY name"
        ).to_dict("records")
        assert rows == [
            {"name": "t-0", "state_type": "COMPLETED", "state_name": "Completed", "keyed": True},
            {"name": "t-1", "state_type": "COMPLETED", "state_name": "Cached", "keyed": True},
        ]
        entries = kernelflow.sql("SELECT task_name FROM cache_entries")
        assert entries["task_name"].tolist() == ["t"]

    def test_large_numpy_and_pandas_inputs(self):
        np = pytest.importorskip("numpy")
        pd = pytest.importorskip("pandas")
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def total(arr, frame):
            CALLS.append(1)
            return float(arr.sum()) + float(frame["a"].sum())

        arr = np.arange(2_000_000, dtype="float64")
        frame = pd.DataFrame({"a": np.arange(100_000)})
        first = total(arr, frame)
        assert total(arr.copy(), frame.copy()) == first
        changed = arr.copy()
        changed[-1] = 0
        assert total(changed, frame) != first
        assert len(CALLS) == 2

    def test_dataframe_result_round_trip(self):
        pd = pytest.importorskip("pandas")
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def make(n):
            CALLS.append(n)
            return pd.DataFrame({"i": range(n), "s": [str(i) for i in range(n)]})

        first = make(50)
        second = make(50)
        pd.testing.assert_frame_equal(first, second)
        assert CALLS == [50]

    def test_corrupt_result_file_is_recomputed_with_one_warning(self, store, capsys):
        from kernelflow.cache_policies import INPUTS
        from kernelflow.store import cache_index

        @task(cache_policy=INPUTS)
        def t(x):
            CALLS.append(x)
            return {"value": x}

        assert t(1) == {"value": 1}
        (entry,) = cache_index.entries()
        result_file = store.home / entry.result
        result_file.write_bytes(b"garbage" + result_file.read_bytes()[7:])
        capsys.readouterr()

        assert t(1) == {"value": 1}
        assert CALLS == [1, 1]
        err = capsys.readouterr().err
        warnings = [line for line in err.splitlines() if "WARNING" in line]
        assert len(warnings) == 1, err
        assert "is corrupt" in warnings[0] and "recomputing" in warnings[0]
        assert "'t'" in warnings[0]
        # The recomputed result is stored again: the next call is a clean hit.
        assert t(1) == {"value": 1}
        assert CALLS == [1, 1]
        assert "WARNING" not in capsys.readouterr().err

    def test_missing_result_file_is_recomputed(self, store):
        from kernelflow.cache_policies import INPUTS
        from kernelflow.store import cache_index

        @task(cache_policy=INPUTS)
        def t(x):
            CALLS.append(x)
            return x

        t(1)
        (entry,) = cache_index.entries()
        (store.home / entry.result).unlink()
        assert t(1) == 1
        assert CALLS == [1, 1]

    def test_reuse_across_processes(self, run_python):
        script = """
            from kernelflow import flow, task
            from kernelflow.cache_policies import INPUTS

            @task(cache_policy=INPUTS, log_prints=True)
            def slow_square(x):
                print(f"computing {x}")
                return x * x

            @flow
            def f(x):
                state = slow_square(x, return_state=True)
                print(state.name, state.result())

            f(12)
        """
        first = run_python(script)
        assert first.stdout == "Completed 144\n"
        assert "computing 12" in first.stderr
        second = run_python(script)
        assert second.stdout == "Cached 144\n"
        assert "computing 12" not in second.stderr
