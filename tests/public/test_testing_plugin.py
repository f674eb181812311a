"""The ``temporary_store`` pytest fixture, as a user gets it: kernelflow's pytest plugin
(the ``pytest11`` entry point installed with kernelflow), in a pytest run of the user's own
test file, in its own process.

Each user test sees a fresh store holding exactly its own runs; the store is gone after the
test; the user's real ``KERNELFLOW_HOME`` is neither read nor written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import json
import os
from pathlib import Path

import kernelflow
from kernelflow import flow, task

SEEN = Path(os.environ["KF_SEEN"])


@task
def double(x):
    return 2 * x


@flow(name="user-flow")
def user_flow(x):
    return double(x) + 1


def note(store):
    with SEEN.open("a") as out:
        out.write(json.dumps({"home": str(store.home), "exists": store.home.is_dir()}) + "\\n")


def test_records_a_flow_run(temporary_store):
    note(temporary_store)
    assert os.environ["KERNELFLOW_HOME"] == str(temporary_store.home)
    assert user_flow(20) == 41
    runs = temporary_store.sql("SELECT flow_name, state_name, parameters FROM flow_runs")
    assert runs[["flow_name", "state_name"]].to_dict("records") == [
        {"flow_name": "user-flow", "state_name": "Completed"}
    ]
    assert {k: str(v) for k, v in json.loads(runs["parameters"][0]).items()} == {"x": "20"}
    tasks = temporary_store.sql("SELECT name, state_name FROM task_runs")
    assert tasks.to_dict("records") == [{"name": "double-0", "state_name": "Completed"}]


def test_a_second_test_sees_only_its_own_runs(temporary_store):
    note(temporary_store)
    assert temporary_store.sql("SELECT count(*) AS n FROM flow_runs")["n"][0] == 0
    assert [user_flow(1), user_flow(2)] == [3, 5]
    # kernelflow.sql reads the same temporary store.
    names = kernelflow.sql("SELECT flow_name FROM flow_runs")["flow_name"].tolist()
    assert names == ["user-flow", "user-flow"]
"""


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: its size and modification time (ns)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_temporary_store_fixture_in_a_users_test_run(
    pytester: pytest.Pytester, run_python: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_home = pytester.path / "real-home"
    record = """
        from kernelflow import flow

        @flow(name="the-users-real-run")
        def real():
            return 1

        real()
        import kernelflow
        print(kernelflow.sql("SELECT flow_name FROM flow_runs")["flow_name"].tolist())
    """
    # Folded into the database before the script exits (by default a detached child
    # does it a moment later, which would race with the snapshot below).
    done = run_python(record, KERNELFLOW_HOME=str(real_home), KERNELFLOW_COMPACT_AT_EXIT="inline")
    assert done.stdout.splitlines()[-1] == "['the-users-real-run']"
    before = tree(real_home)
    assert before  # the real store exists, with its database or journal

    seen = pytester.path / "seen.jsonl"
    monkeypatch.setenv("KERNELFLOW_HOME", str(real_home))
    monkeypatch.setenv("KF_SEEN", str(seen))
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)

    homes = [json.loads(line) for line in seen.read_text().splitlines()]
    assert [h["exists"] for h in homes] == [True, True]
    first, second = (Path(h["home"]) for h in homes)
    assert first != second and real_home not in (first, second)
    assert not first.exists() and not second.exists()  # removed after each test
    assert tree(real_home) == before  # neither read nor written
    after = run_python(
        "import kernelflow\n"
        "print(kernelflow.sql('SELECT flow_name FROM flow_runs')['flow_name'].tolist())\n",
        KERNELFLOW_HOME=str(real_home),
    )
    assert after.stdout.splitlines()[-1] == "['the-users-real-run']"
