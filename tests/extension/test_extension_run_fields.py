"""What the JupyterLab panel reads beyond the store's rows: kinds, names, counts, filters,
typed parameters and the form of a paused run, through a real in-process Jupyter server.

Runs are real: flows and subflows run in this process, a notebook session is the one
``%load_ext kernelflow`` creates (here without a kernel), and a paused run is a flow
waiting in ``pause_flow_run`` in a thread. Deployment runs (folding of Skipped runs,
their notebooks and logs) are in ``tests/deployments/test_deployment_run_fields.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

import kernelflow
from kernelflow import flow, pause_flow_run, resume_flow_run, task
from kernelflow.input import RunInput

pytestmark = pytest.mark.timeout(120)


@task
def double(x: int) -> int:
    return 2 * x


@task
def fail() -> None:
    raise ValueError("no data")


@flow(name="inner")
def inner(x: int) -> int:
    return double(x)


@flow(name="outer")
def outer(n: int = 3, label: str = "daily", ratio: float = 0.5) -> int:
    return inner(n)


@flow(name="half-broken")
def half_broken() -> None:
    double(1)
    fail(return_state=True)
    fail(return_state=True)


async def get_json(jp_fetch: Any, *path: str, **params: Any) -> Any:
    response = await jp_fetch("kernelflow", "api", *path, params=params)
    assert response.code == 200
    return json.loads(response.body)


async def get_error(jp_fetch: Any, *path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kernelflow", "api", *path, params=params)
    return caught.value.code, json.loads(caught.value.response.body)


def run_in_a_notebook_session(path: str) -> str:
    """Run ``outer`` at the top level of a notebook session for ``path``; the session's id."""
    from kernelflow.kernel.session import NotebookSession

    session = NotebookSession(path)
    session.install()
    try:
        assert outer(n=2, return_state=True).is_completed()
        return session.flow_run.id
    finally:
        session.uninstall()


def by_flow(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["flow_name"]: r for r in runs}


class TestKindsAndNames:
    async def test_flows_subflows_and_a_notebook_session(self, jp_fetch: Any) -> None:
        assert outer(return_state=True).is_completed()
        session_id = run_in_a_notebook_session("/home/ada/reports/weekly.ipynb")
        runs = (await get_json(jp_fetch, "runs"))["runs"]
        session = next(r for r in runs if r["id"] == session_id)
        assert session["kind"] == "session"
        assert session["display_name"] == "weekly.ipynb"
        assert session["path"] == "/home/ada/reports/weekly.ipynb"
        assert session["deployment"] is None
        # Called at the top of a cell, a flow is a flow; only a flow called by a flow is a subflow.
        in_session = [r for r in runs if r["parent_flow_run_id"] == session_id]
        assert [(r["flow_name"], r["kind"]) for r in in_session] == [("outer", "flow")]
        inner_of_session = next(r for r in runs if r["parent_flow_run_id"] == in_session[0]["id"])
        assert inner_of_session["kind"] == "subflow"
        plain = [r for r in runs if r["flow_name"] == "outer" and r["parent_flow_run_id"] is None]
        assert len(plain) == 1 and plain[0]["kind"] == "flow"
        assert plain[0]["display_name"] == plain[0]["name"] and plain[0]["path"] is None
        for run in runs:
            assert run["folded"] is None and run["reason"] is None

    async def test_failed_and_crashed_task_counts(self, jp_fetch: Any) -> None:
        half_broken(return_state=True)
        assert outer(return_state=True).is_completed()
        runs = by_flow((await get_json(jp_fetch, "runs"))["runs"])
        broken = runs["half-broken"]
        assert (broken["failed_tasks"], broken["crashed_tasks"]) == (2, 0)
        assert broken["task_runs"] == {"total": 3, "by_state": {"Completed": 1, "Failed": 2}}
        assert (runs["outer"]["failed_tasks"], runs["outer"]["crashed_tasks"]) == (0, 0)


class TestFilters:
    async def test_since_and_until_by_date_and_time(self, jp_fetch: Any) -> None:
        assert outer(return_state=True).is_completed()
        now = dt.datetime.now(dt.timezone.utc)
        today = now.date().isoformat()
        yesterday = (now - dt.timedelta(days=1)).date().isoformat()
        tomorrow = (now + dt.timedelta(days=1)).date().isoformat()

        async def names(**params: str) -> list[str]:
            return [r["flow_name"] for r in (await get_json(jp_fetch, "runs", **params))["runs"]]

        assert await names(since=today) == ["inner", "outer"]
        assert await names(until=today) == ["inner", "outer"]  # a date includes its whole day
        assert await names(until=yesterday) == []
        assert await names(since=tomorrow) == []
        assert await names(since=yesterday, until=tomorrow, flow="outer") == ["outer"]
        an_hour_ago = (now - dt.timedelta(hours=1)).isoformat(timespec="seconds")
        assert await names(since=an_hour_ago) == ["inner", "outer"]
        # Naive times are UTC; an offset is honoured.
        in_an_hour = (now + dt.timedelta(hours=1)).replace(tzinfo=None).isoformat()
        assert await names(since=in_an_hour) == []
        berlin_later = (now + dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=2)))
        assert await names(until=berlin_later.isoformat()) == ["inner", "outer"]
        assert await names(until=(now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M Z")) == []

    async def test_an_unknown_deployment_lists_nothing(self, jp_fetch: Any) -> None:
        assert outer(return_state=True).is_completed()
        body = await get_json(jp_fetch, "runs", deployment="no-such-deployment")
        assert body["runs"] == [] and body["has_more"] is False

    @pytest.mark.parametrize(
        ("params", "words"),
        [
            ({"since": "yesterday"}, "since='yesterday' is not a date or time"),
            ({"until": "2026-13-01"}, "until='2026-13-01' is not a date or time"),
            ({"since": "2026-12-05T25:00"}, "since='2026-12-05T25:00'"),
            ({"until": "'; DROP TABLE flow_runs; --"}, "is not a date or time"),
            ({"since": "2026-12-06", "until": "2026-12-05"}, "is not before until"),
            ({"since": "2026-12-05", "until": "2026-12-05T00:00Z"}, "is not before until"),
        ],
    )
    async def test_bad_dates_are_400_with_one_line(
        self, jp_fetch: Any, params: dict[str, str], words: str
    ) -> None:
        assert outer(return_state=True).is_completed()
        code, body = await get_error(jp_fetch, "runs", **params)
        assert code == 400 and body["reason"] == "ConfigurationError"
        assert words in body["message"] and "\n" not in body["message"]
        assert "`" not in body["message"]
        assert len((await get_json(jp_fetch, "runs"))["runs"]) == 2


class TestRunDetailFields:
    async def test_parameters_are_typed_for_the_panel(self, jp_fetch: Any) -> None:
        assert outer(n=7, label="weekly", return_state=True).is_completed()
        run_id = str(
            kernelflow.sql("SELECT id FROM flow_runs WHERE flow_name = 'outer'").iloc[0, 0]
        )
        run = (await get_json(jp_fetch, "runs", run_id))["run"]
        assert run["parameters_typed"] == [
            {"name": "n", "type": "int", "value_text": "7"},
            {"name": "label", "type": "str", "value_text": "'weekly'"},
            {"name": "ratio", "type": "float", "value_text": "0.5"},
        ]
        assert run["pause"] is None and run["deployment"] is None
        assert run["has_notebook"] is False and run["has_html"] is False
        assert run["kind"] == "flow" and run["failed_tasks"] == 0

    async def test_a_value_that_is_no_literal_has_type_any(self, jp_fetch: Any) -> None:
        @flow(name="takes-an-object")
        def takes(thing: object) -> None:
            pass

        takes(object())
        run_id = str(kernelflow.sql("SELECT id FROM flow_runs").iloc[0, 0])
        (typed,) = (await get_json(jp_fetch, "runs", run_id))["run"]["parameters_typed"]
        assert typed["name"] == "thing" and typed["type"] == "any"
        assert typed["value_text"].startswith("<object object at ")


class Approval(RunInput):
    approved: bool
    comment: str = "LGTM"


@contextmanager
def paused_flow() -> Iterator[tuple[Any, Any]]:
    """A flow waiting in ``pause_flow_run`` in a thread: (its run, its future)."""
    from kernelflow.engine import subscribe, unsubscribe

    found: queue.Queue = queue.Queue()

    def listener(kind: str, run: Any, state: Any) -> None:
        if kind == "flow" and state.is_paused():
            found.put(run)

    @flow(name="needs-approval")
    def needs_approval() -> bool:
        described = Approval.with_initial_data(description="Ship the **weekly** report?")
        return pause_flow_run(wait_for_input=described, timeout=60, key="ship").approved

    subscribe(listener)
    try:
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(needs_approval)
            run = found.get(timeout=30)
            try:
                yield run, future
            finally:
                if not future.done():
                    resume_flow_run(run.id, run_input={"approved": False})
                future.result(timeout=30)
    finally:
        unsubscribe(listener)


class TestPausedRun:
    async def test_the_form_it_waits_for(self, jp_fetch: Any) -> None:
        with paused_flow() as (run, future):
            detail = (await get_json(jp_fetch, "runs", run.id))["run"]
            assert detail["state_name"] == "Paused"
            pause = detail["pause"]
            assert pause["key"] == "ship"
            assert pause["description"] == "Ship the **weekly** report?"
            assert pause["fields"] == [
                {"name": "approved", "type": "bool", "default": None, "description": "Approved"},
                {"name": "comment", "type": "str", "default": "LGTM", "description": "Comment"},
            ]
            resume_flow_run(run.id, run_input={"approved": True})
            assert future.result(timeout=30) is True
        detail = (await get_json(jp_fetch, "runs", run.id))["run"]
        assert detail["state_name"] == "Completed" and detail["pause"] is None
