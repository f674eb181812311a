"""Transactions as Prefect 3 has them (``prefect.transactions``).

Checked against PrefectHQ/prefect ``src/prefect/transactions.py`` (commit,
rollback, hooks, values, commit modes, isolation), ``src/prefect/task_engine.py``
(a task run's transaction keyed by its cache key, ``handle_rollback``),
``tests/test_task_engine.py::TestTransactionHooks`` and
``docs/v3/advanced/transactions.mdx``. Deliberate differences are in
``docs/decisions/transactions.md`` and marked here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from kernelflow import flow, task
from kernelflow.cache_policies import INPUTS
from kernelflow.errors import ConfigurationError
from kernelflow.store import cache_index
from kernelflow.transactions import (
    CommitMode,
    IsolationLevel,
    Transaction,
    TransactionState,
    get_transaction,
    transaction,
)


@pytest.fixture
def caplog(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """pytest's caplog, also fed by the ``kernelflow`` logger (which does not propagate)."""
    from kernelflow.logs import configure

    logger = configure()
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def state_names(store, run_id: str) -> list[str]:
    frame = store.sql("SELECT state_name FROM states WHERE run_id = ? ORDER BY seq", [run_id])
    return frame["state_name"].tolist()


def cached_tasks() -> list[str]:
    return sorted(entry.task_name for entry in cache_index.entries())


class TestRollback:
    """A later failure in the block rolls back the tasks that completed in it."""

    def test_the_docs_example_removes_the_file_and_caches_nothing(self, tmp_path, store):
        path = tmp_path / "side-effect.txt"
        seen = []

        @task(cache_policy=INPUTS)
        def write_file(contents: str) -> int:
            path.write_text(contents)
            return len(contents)

        @write_file.on_rollback
        def del_file(txn):
            seen.append(("rollback", txn.get("filename")))
            os.unlink(txn.get("filename"))

        @task
        def quality_test() -> None:
            if len(path.read_text().splitlines()) < 2:
                raise ValueError("Not enough data!")

        states = {}

        @flow
        def pipeline(contents: str) -> None:
            with transaction() as txn:
                txn.set("filename", str(path))
                states["write"] = write_file(contents, return_state=True)
                quality_test()

        with pytest.raises(ValueError, match="Not enough data!"):
            pipeline("hello world")
        assert seen == [("rollback", str(path))]
        assert not path.exists()
        assert cached_tasks() == []
        # Prefect's TestTransactionHooks: the completed task run ends RolledBack.
        run_id = states["write"].run_id
        assert state_names(store, run_id) == ["Pending", "Running", "Completed", "RolledBack"]
        (row,) = store.sql(
            "SELECT state_type, state_name, state_message FROM task_runs WHERE id = ?", [run_id]
        ).values.tolist()
        assert row == ["COMPLETED", "RolledBack", "Task rolled back as part of transaction"]

    def test_hooks_run_newest_first_and_before_the_failed_state(self):
        order = []

        def hook(name):
            def record(txn):
                order.append(name)

            record.__name__ = name
            return record

        @task(on_rollback=[hook("a1"), hook("a2")])
        def a() -> int:
            return 1

        @task
        def b() -> int:
            return 2

        b.on_rollback(hook("b1"))

        @task(on_failure=[lambda t, r, s: order.append("c failed")])
        def c() -> None:
            raise RuntimeError("boom")

        @flow
        def pipeline() -> None:
            with transaction():
                a()
                b()
                c()

        state = pipeline(return_state=True)
        assert state.is_failed()
        # Prefect: a task's hooks in reverse, tasks newest first, and all of it while the
        # failing task's transaction ends, before its Failed state (and on_failure hooks).
        assert order == ["b1", "a2", "a1", "c failed"]

    def test_an_exception_in_the_block_rolls_back_and_propagates(self):
        seen = []

        @task
        def step(x: int) -> int:
            return x

        step.on_rollback(lambda txn: seen.append(txn.get("x", None)))
        step.on_commit(lambda txn: seen.append("commit"))

        with pytest.raises(KeyError, match="late"):
            with transaction() as txn:
                txn.set("x", 7)
                assert step(1) == 1
                raise KeyError("late")
        assert seen == [7]
        assert txn.is_rolled_back()

    def test_a_failed_task_whose_error_is_caught_still_rolls_back_the_block(self):
        seen = []

        @task
        def first() -> int:
            return 1

        first.on_rollback(lambda txn: seen.append("rolled back"))
        first.on_commit(lambda txn: seen.append("committed"))

        @task
        def flaky() -> None:
            raise ValueError("nope")

        @flow
        def pipeline() -> str:
            with transaction() as txn:
                first()
                state = flaky(return_state=True)
                assert txn.is_rolled_back()  # at once, as in Prefect
            return state.name

        assert pipeline() == "Failed"
        assert seen == ["rolled back"]

    def test_a_cached_task_is_not_rolled_back(self, store):
        seen = []

        @task(cache_policy=INPUTS)
        def load(x: int) -> int:
            seen.append("computed")
            return x

        load.on_rollback(lambda txn: seen.append("rolled back"))

        @task
        def fail() -> None:
            raise ValueError("no")

        assert load(1) == 1  # outside any block: committed at once
        states = {}

        @flow
        def pipeline() -> None:
            with transaction():
                states["load"] = load(1, return_state=True)
                fail()

        pipeline(return_state=True)
        assert seen == ["computed"]
        assert states["load"].name == "Cached"
        assert state_names(store, states["load"].run_id)[-1] == "Cached"
        assert cached_tasks() == ["load"]

    def test_a_retried_try_does_not_roll_back(self):
        # Deliberate difference: Prefect gives every try a transaction, so a failed try
        # rolls the block back even when a retry succeeds; kernelflow's spans the run.
        tries = []
        seen = []

        @task
        def first() -> int:
            return 1

        first.on_rollback(lambda txn: seen.append("rolled back"))
        first.on_commit(lambda txn: seen.append("committed"))

        @task(retries=1)
        def flaky() -> int:
            tries.append(1)
            if len(tries) == 1:
                raise ConnectionError("once")
            return 2

        @flow
        def pipeline() -> int:
            with transaction():
                return first() + flaky()

        assert pipeline() == 3
        assert seen == ["committed"]


class TestCommit:
    """Records and commit hooks wait for the block; tasks alone commit when they complete."""

    def test_records_and_hooks_wait_for_the_end_of_the_block(self):
        seen = []

        @task(cache_policy=INPUTS)
        def load(x: int) -> int:
            return x

        @load.on_commit
        def announce(txn):
            seen.append(("commit", txn.key is not None, txn.get_parent() is None))

        @task(cache_policy=INPUTS)
        def save(x: int) -> int:
            return x

        save.on_commit(lambda txn: seen.append(("save",)))

        @flow
        def pipeline() -> list:
            during = []
            with transaction() as txn:
                save(load(1))
                during = [cached_tasks(), list(seen), txn.state]
            return during

        during = pipeline()
        assert during == [[], [], TransactionState.ACTIVE]
        # Children commit in order; each task's hook gets its own transaction, whose parent
        # (the block's) has ended by then, as in Prefect.
        assert seen == [("commit", True, False), ("save",)]
        assert cached_tasks() == ["load", "save"]

    def test_a_task_outside_a_block_commits_when_it_completes(self):
        seen = []

        @task(cache_policy=INPUTS)
        def load(x: int) -> int:
            get_transaction().set("job", f"job-{x}")  # the run's own transaction
            return x

        @load.on_commit
        def confirm(txn):
            seen.append((txn.get("job"), cached_tasks(), isinstance(txn, Transaction)))

        load.on_completion(lambda t, r, s: seen.append("completed"))
        assert load(3) == 3
        # Prefect's order: the state, then the commit (hooks, then the record), then on_completion.
        assert seen == [("job-3", [], True), "completed"]
        assert cached_tasks() == ["load"]

    def test_a_failing_commit_hook_is_logged_and_rolls_the_run_back(self, caplog, store):
        @task(cache_policy=INPUTS)
        def load(x: int) -> int:
            return x

        @load.on_commit
        def explode(txn):
            raise RuntimeError("whoops!")

        state = load(1, return_state=True)
        assert state.is_completed()
        assert "An error was encountered while running commit hook 'explode'" in caplog.text
        assert "An error was encountered while committing transaction" in caplog.text
        assert "RuntimeError" in caplog.text and "whoops!" in caplog.text
        assert "Running rollback hook" not in caplog.text  # the engine's own hook is silent
        assert cached_tasks() == []
        assert state_names(store, state.run_id)[-1] == "RolledBack"

    def test_hook_runs_are_logged_on_the_task_run(self, caplog):
        @task
        def step() -> None:
            pass

        @step.on_rollback
        def rollback(txn):
            pass

        @step.on_commit
        def commit(txn):
            pass

        @flow
        def ok() -> None:
            with transaction():
                step()

        @flow
        def failing() -> None:
            with transaction():
                step()
                raise ValueError("txn failed")

        with caplog.at_level(logging.INFO, logger="kernelflow"):
            ok()
            failing(return_state=True)
        messages = [r.getMessage() for r in caplog.records]
        assert "Running commit hook 'commit'" in messages
        assert "Commit hook 'commit' finished running successfully" in messages
        assert "Running rollback hook 'rollback'" in messages
        assert "Rollback hook 'rollback' finished running successfully" in messages
        labels = {r.run_label for r in caplog.records if "hook 'rollback'" in r.getMessage()}
        assert labels == {"Task run 'step-0'"}

    def test_a_failing_rollback_hook_is_logged_and_the_others_still_run(self, caplog):
        seen = []

        @task
        def first() -> None:
            pass

        first.on_rollback(lambda txn: seen.append("first"))

        @task
        def second() -> None:
            pass

        @second.on_rollback
        def broken(txn):
            raise RuntimeError("whoops!")

        @flow
        def pipeline() -> None:
            with transaction():
                first()
                second()
                raise ValueError("txn failed")

        pipeline(return_state=True)
        assert "An error was encountered while running rollback hook 'broken'" in caplog.text
        assert "RuntimeError" in caplog.text and "whoops!" in caplog.text
        assert seen == ["first"]

    def test_options_and_with_options_keep_the_hooks(self):
        seen = []

        @task(on_commit=[lambda txn: seen.append("c")], on_rollback=[lambda t: seen.append("r")])
        def step() -> int:
            return 1

        copy = step.with_options(name="copy")
        assert len(copy.on_commit_hooks) == 1 and len(copy.on_rollback_hooks) == 1
        copy()
        with pytest.raises(ValueError):
            with transaction():
                copy()
                raise ValueError("x")
        assert seen == ["c", "r"]

    def test_async_flow_and_tasks(self):
        seen = []

        @task
        async def step(x: int) -> int:
            await asyncio.sleep(0)
            return x

        @step.on_rollback
        async def undo(txn):
            seen.append(("undo", txn.get("run")))

        step.on_commit(lambda txn: seen.append("commit"))

        @flow
        async def pipeline(fail: bool) -> int:
            with transaction() as txn:
                txn.set("run", "r1")
                value = await step(1)
                if fail:
                    raise ValueError("txn failed")
            return value

        assert asyncio.run(pipeline(False)) == 1
        with pytest.raises(ValueError):
            asyncio.run(pipeline(True))
        assert seen == ["commit", ("undo", "r1")]

    def test_submitted_tasks_join_the_block(self):
        seen = []

        @task
        def step(x: int) -> int:
            return x

        step.on_commit(lambda txn: seen.append("commit"))
        step.on_rollback(lambda txn: seen.append("rollback"))

        @task
        def fail() -> None:
            raise ValueError("no")

        @flow
        def pipeline(bad: bool) -> None:
            with transaction():
                futures = step.map([1, 2])
                futures.wait()
                if bad:
                    fail.submit().result()

        pipeline(False)
        assert seen == ["commit", "commit"]
        seen.clear()
        with pytest.raises(ValueError):
            pipeline(True)
        assert seen == ["rollback", "rollback"]

    def test_a_task_inside_a_task_commits_with_it(self):
        seen = []

        @task(cache_policy=INPUTS)
        def inner(x: int) -> int:
            return x

        inner.on_commit(lambda txn: seen.append("inner commit"))
        inner.on_rollback(lambda txn: seen.append("inner rollback"))

        @task
        def outer(fail: bool) -> int:
            value = inner(1)
            seen.append(cached_tasks())
            if fail:
                raise ValueError("outer failed")
            return value

        with pytest.raises(ValueError):
            outer(True)
        assert seen == [[], "inner rollback"]
        assert cached_tasks() == []
        seen.clear()
        assert outer(False) == 1
        assert seen == [[], "inner commit"]
        assert cached_tasks() == ["inner"]


class TestAcrossRuns:
    """A rollback leaves nothing to reuse; a commit leaves the results for the next run."""

    def test_rerun_recomputes_after_rollback_and_reuses_after_commit(self, run_python):
        script = """
        import sys
        from kernelflow import flow, task
        from kernelflow.cache_policies import INPUTS
        from kernelflow.transactions import transaction

        @task(cache_policy=INPUTS)
        def extract(day: str) -> str:
            print("computed", day)
            return day.upper()

        @task
        def check(fail: bool) -> None:
            if fail:
                raise ValueError("check failed")

        @flow
        def pipeline(fail: bool) -> str:
            with transaction():
                value = extract("mon")
                check(fail)
            return value

        state = pipeline(sys.argv[-1] == "fail", return_state=True)
        print("state", state.name)
        """
        fail = run_python(script.replace("sys.argv[-1]", "'fail'"))
        assert fail.stdout.split("\n")[:2] == ["computed mon", "state Failed"]
        first = run_python(script.replace("sys.argv[-1]", "'ok'"))
        assert first.stdout.split("\n")[:2] == ["computed mon", "state Completed"]
        again = run_python(script.replace("sys.argv[-1]", "'ok'"))
        assert again.stdout.split("\n")[:1] == ["state Completed"]


class TestKeyedTransactions:
    """``transaction(key=...)``: a record under the key; ``is_committed()`` on the next run."""

    def test_the_idempotency_example(self):
        written = []

        @task
        def write_data(data: str) -> None:
            written.append(data)

        @flow
        def pipeline() -> str:
            with transaction(key="download-and-write-data") as txn:
                if txn.is_committed():
                    return "skipped"
                write_data("some data")
            return "wrote"

        assert pipeline() == "wrote"
        assert pipeline() == "skipped"
        assert written == ["some data"]
        (entry,) = cache_index.entries()
        assert (entry.key, entry.task_name) == ("download-and-write-data", "transaction")

    def test_a_rolled_back_key_is_not_committed_and_overwrite_runs_again(self):
        with pytest.raises(ValueError):
            with transaction(key="k") as txn:
                raise ValueError("no")
        with transaction(key="k") as txn:
            assert not txn.is_committed()
            txn.stage({"rows": 3})
        with transaction(key="k") as txn:
            assert txn.is_committed()
            assert txn.read().result == {"rows": 3}
        with transaction(key="k", overwrite=True) as txn:
            assert not txn.is_committed()
            txn.stage({"rows": 4})
        with transaction(key="k") as txn:
            assert txn.read().result == {"rows": 4}

    def test_serializable_threads_compute_once(self):
        computed = []
        results = {}

        @task
        def download() -> str:
            time.sleep(0.2)  # long enough for the other thread to reach the lock
            computed.append(threading.current_thread().name)
            return threading.current_thread().name

        @flow
        def pipeline(key: str) -> str:
            with transaction(key=key, isolation_level=IsolationLevel.SERIALIZABLE) as txn:
                if txn.is_committed():
                    return "skipped"
                return download()

        def run(name: str) -> None:
            results[name] = pipeline("race")

        threads = [threading.Thread(target=run, args=(n,), name=n) for n in ("t1", "t2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(computed) == 1
        assert sorted(results.values()) == sorted([computed[0], "skipped"])

    def test_serializable_processes_compute_once(self, tmp_path, child_env):
        script = tmp_path / "race.py"
        script.write_text(
            textwrap.dedent(
                """
                import time
                from kernelflow import flow, task
                from kernelflow.transactions import IsolationLevel, transaction

                @task
                def download() -> None:
                    time.sleep(0.5)
                    print("computed")

                @flow
                def pipeline() -> None:
                    level = IsolationLevel.SERIALIZABLE
                    with transaction(key="race", isolation_level=level) as txn:
                        if txn.is_committed():
                            print("skipped")
                            return
                        download()

                pipeline()
                """
            )
        )
        procs = [
            subprocess.Popen(
                [sys.executable, str(script)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=child_env,
                cwd=tmp_path,
            )
            for _ in range(2)
        ]
        outputs = sorted(proc.communicate(timeout=60)[0].strip() for proc in procs)
        assert [proc.returncode for proc in procs] == [0, 0]
        assert outputs == ["computed", "skipped"]

    def test_tasks_inherit_the_level_and_mode(self):
        @task
        def inside() -> tuple:
            txn = get_transaction()
            return txn.isolation_level, txn.commit_mode, txn.get_parent()

        with transaction(
            isolation_level=IsolationLevel.SERIALIZABLE, commit_mode=CommitMode.EAGER
        ) as outer:
            assert inside() == (IsolationLevel.SERIALIZABLE, CommitMode.EAGER, outer)

    def test_read_committed_threads_both_compute(self):
        # The default isolation: both see no record when they begin (the docs' race).
        started = threading.Barrier(2, timeout=10)
        computed = []

        def run() -> None:
            with transaction(key="race") as txn:
                started.wait()
                if not txn.is_committed():
                    computed.append(1)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert computed == [1, 1]

    def test_the_lock_is_released_after_a_rollback_and_a_committed_begin(self):
        level = IsolationLevel.SERIALIZABLE
        with pytest.raises(ValueError):
            with transaction(key="k", isolation_level=level):
                raise ValueError("no")
        with transaction(key="k", isolation_level=level):
            pass
        with pytest.raises(ValueError):
            with transaction(key="k", isolation_level=level) as txn:
                assert txn.is_committed()
                raise ValueError("begun committed")

        done = threading.Event()

        def again() -> None:
            with transaction(key="k", isolation_level="SERIALIZABLE"):
                done.set()

        thread = threading.Thread(target=again, daemon=True)
        thread.start()
        assert done.wait(10), "the key stayed locked"


class TestTransactionObject:
    """Values, parents, modes and states (prefect/transactions.py)."""

    def test_get_transaction_and_values(self):
        assert get_transaction() is None
        seen = {}

        @task
        def step() -> None:
            txn = get_transaction()
            seen["parent"] = txn.get_parent()
            seen["inherited"] = txn.get("shared")
            txn.set("shared", "child")
            seen["own"] = txn.get("shared")

        with transaction() as outer:
            assert get_transaction() is outer
            outer.set("shared", "parent")
            outer.set("rows", [1, 2])
            step()
            assert outer.get("shared") == "parent"
            rows = outer.get("rows")
            rows.append(3)
            assert outer.get("rows") == [1, 2]  # a copy: set() stores
            with transaction() as inner:
                assert inner.get_parent() is outer and get_transaction() is inner
                assert inner.get("shared") == "parent"
            assert get_transaction() is outer
            with pytest.raises(ValueError, match="unknown key: missing"):
                outer.get("missing")
            assert outer.get("missing", 0) == 0
        assert get_transaction() is None
        assert seen == {"parent": outer, "inherited": "parent", "own": "child"}

    def test_commit_modes(self):
        with transaction(key="outer") as outer:
            with transaction(key="inner") as inner:
                pass
            assert not inner.is_committed()  # LAZY: waits for the outer
        assert outer.is_committed() and inner.is_committed()

        with transaction(commit_mode=CommitMode.LAZY):
            with transaction(commit_mode=CommitMode.EAGER) as eager:
                pass
            assert eager.is_committed()

        with transaction(commit_mode=CommitMode.OFF) as off:
            pass
        assert off.is_rolled_back()
        with transaction(commit_mode="OFF") as off:
            off.commit()
        assert off.is_committed()

    def test_eager_tasks_commit_at_once_and_are_not_rolled_back(self):
        seen = []

        @task(cache_policy=INPUTS)
        def load(x: int) -> int:
            return x

        load.on_commit(lambda txn: seen.append("commit"))
        load.on_rollback(lambda txn: seen.append("rollback"))

        with pytest.raises(ValueError):
            with transaction(commit_mode=CommitMode.EAGER):
                load(1)
                assert seen == ["commit"] and cached_tasks() == ["load"]
                raise ValueError("later")
        assert seen == ["commit"]

    def test_a_rolled_back_inner_block_rolls_back_the_outer(self):
        seen = []
        with transaction() as outer:
            outer.on_rollback_hooks.append(lambda txn: seen.append("outer"))
            try:
                with transaction() as inner:
                    inner.stage(1, on_rollback_hooks=[lambda txn: seen.append("inner")])
                    raise ValueError("inner")
            except ValueError:
                pass
        assert inner.is_rolled_back() and outer.is_rolled_back()
        assert seen == ["inner", "outer"]

    def test_states_and_enums(self):
        txn = Transaction()
        assert txn.state is TransactionState.PENDING and txn.is_pending()
        assert txn.commit_mode is None
        with txn:
            assert txn.is_active()
            txn.stage("v")
            assert txn.is_staged()
        assert txn.is_committed()
        assert IsolationLevel("SERIALIZABLE") is IsolationLevel.SERIALIZABLE
        assert [m.value for m in CommitMode] == ["EAGER", "LAZY", "OFF"]

    def test_bad_arguments_say_what_to_do(self):
        with pytest.raises(ConfigurationError, match="drop the store argument"):
            transaction(key="k", store=object())
        with pytest.raises(ConfigurationError, match="use one of READ_COMMITTED, SERIALIZABLE"):
            transaction(isolation_level="REPEATABLE_READ")
        with pytest.raises(ConfigurationError, match="must be a string"):
            transaction(key=42)
        with pytest.raises(RuntimeError, match="already entered"):
            with transaction() as txn:
                txn.__enter__()
        with pytest.raises(RuntimeError, match="a transaction runs once"):
            with txn:
                pass
