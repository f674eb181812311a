"""One session's questions reuse what it read, and answer exactly as questions asked alone."""

from __future__ import annotations

import threading
import time

import pytest
from store_workers import flow_run, log, new_id, state, task_run

from kernelflow.store import queries
from kernelflow.store.journal import record
from kernelflow.store.queries import attached, logs, reading


@pytest.fixture
def runs(paths):
    """A flow run with two task runs and logs; a deployment run whose notebook session ran one."""
    t = time.time()
    etl, deployed, session = new_id(), new_id(), new_id()
    first, second, in_session = new_id(), new_id(), new_id()
    for event in [
        flow_run(etl, "etl", t=t),
        log(etl, "etl starts", kind="flow"),
        task_run(first, etl, t=t + 1),
        log(first, "loading"),
        state(first, "Completed", t=t + 2),
        task_run(second, etl, t=t + 3),
        log(second, "saving"),
        state(second, "Failed", t=t + 4),
        state(etl, "Failed", kind="flow", t=t + 5),
        flow_run(deployed, "report", t=t + 6, deployment_id="dep-1", tags=[]),
        flow_run(session, "report.ipynb", t=t + 7, parent_flow_run_id=deployed, tags=["notebook"]),
        task_run(in_session, session, t=t + 8),
        log(in_session, "in the notebook"),
        state(in_session, "Completed", t=t + 9),
        state(session, "Completed", kind="flow", t=t + 10),
        state(deployed, "Completed", kind="flow", t=t + 11),
    ]:
        record(event)
    return {"etl": etl, "deployed": deployed, "first": first, "second": second}


def _alone(run_id: str) -> tuple:
    """Each question on its own connection, as before a session shared anything."""
    page = queries.log_page_rows(run_id, limit=2)
    return (
        queries.log_rows(run_id),
        (page.offset, page.total, page.lines),
        queries.artifact_rows(run_id),
    )


def _in_a_session(run_id: str, names_task_runs: bool) -> tuple:
    """The same questions after the run, its task runs and subflows were read (runs show)."""
    with queries.session():
        queries.find_flow_run(run_id)
        queries.task_run_rows(run_id)
        queries.subflow_rows(run_id)
        reader = reading._session.reader
        assert (logs._known_task_ids(reader, run_id) is not None) is names_task_runs
        page = queries.log_page_rows(run_id, limit=2)
        return (
            queries.log_rows(run_id),
            (page.offset, page.total, page.lines),
            queries.artifact_rows(run_id),
        )


class TestSessionReuse:
    def test_logs_of_a_run_and_its_task_runs_are_the_same(self, runs):
        alone = _alone(runs["etl"])
        assert [line["message"] for line in alone[0]] == ["etl starts", "loading", "saving"]
        assert _in_a_session(runs["etl"], names_task_runs=True) == alone

    def test_a_deployment_run_still_gets_its_session_s_lines(self, runs):
        alone = _alone(runs["deployed"])
        assert [line["message"] for line in alone[0]] == ["in the notebook"]
        assert _in_a_session(runs["deployed"], names_task_runs=False) == alone

    def test_a_whole_id_finds_its_run_and_a_prefix_still_works(self, runs):
        assert queries.find_flow_run(runs["etl"])["id"] == runs["etl"]
        assert queries.find_flow_run(runs["etl"][:8])["id"] == runs["etl"]


class TestAttached:
    def test_threads_share_one_attach_and_the_last_one_detaches(self, runs, paths):
        inside = threading.Barrier(2)
        seen: list[int] = []

        def read() -> None:
            with queries.session():
                queries.find_flow_run(runs["etl"])
                inside.wait(timeout=10)
                seen.append(attached._instance.attached[paths.home].readers)
                inside.wait(timeout=10)

        threads = [threading.Thread(target=read) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert seen == [2, 2]
        assert paths.home not in attached._instance.attached

    def test_a_writer_is_not_blocked_once_the_session_ends(self, runs, paths):
        from kernelflow.store.db import connect

        with queries.session():
            queries.find_flow_run(runs["etl"])
        with connect(paths, timeout=0.5) as con:  # the file and the lock are free again
            assert con.execute("SELECT count(*) FROM flow_runs").fetchone() == (3,)

    def test_an_idle_instance_is_closed(self, runs, monkeypatch):
        monkeypatch.setattr(attached, "_IDLE_S", 0.01)
        instance = attached._Instance()  # not one whose closer an earlier test armed
        monkeypatch.setattr(attached, "_instance", instance)
        with queries.session():
            queries.find_flow_run(runs["etl"])
        closer = instance.closer
        assert closer is not None and instance.con is not None
        closer.join(timeout=10)
        assert instance.con is None and instance.closer is None
        assert queries.find_flow_run(runs["etl"])["id"] == runs["etl"]  # opened again
