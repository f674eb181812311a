"""The REST API, through a real in-process Jupyter server, on a store with real runs.

Runs are recorded by running real flows in this process (``store`` gives each
test its own empty store); the server reads them through the same store.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from kernelflow import flow, get_run_logger, task

pytestmark = pytest.mark.timeout(120)


@task(retries=1, retry_delay_seconds=0)
def add_one(x: int) -> int:
    get_run_logger().info("adding one to %d", x)
    return x + 1


@task
def explode() -> None:
    raise ValueError("the sensor returned 100% garbage")


@flow(name="load")
def load_step(values: list[int]) -> int:
    return add_one(sum(values))


@flow(name="etl")
def etl(n: int = 3) -> int:
    get_run_logger().info("starting etl with n=%d", n)
    values = [add_one(i) for i in range(n)]
    return load_step(values)


@flow(name="broken")
def broken() -> None:
    explode()


def record_runs() -> dict[str, str]:
    """Run an ETL flow (3 task runs, a subflow) and a failing flow; their names -> ids."""
    etl_state = etl(n=3, return_state=True)
    broken_state = broken(return_state=True)
    assert etl_state.is_completed() and broken_state.is_failed()
    import kernelflow

    rows = kernelflow.sql("SELECT flow_name, id FROM flow_runs")
    return dict(zip(rows["flow_name"], rows["id"], strict=True))


async def get_json(jp_fetch: Any, *path: str, **params: Any) -> Any:
    response = await jp_fetch("kernelflow", "api", *path, params=params)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    return json.loads(response.body)


async def get_error(jp_fetch: Any, *path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("kernelflow", "api", *path, params=params)
    return caught.value.code, json.loads(caught.value.response.body)


class TestAuthentication:
    @pytest.mark.parametrize("path", ["runs", "runs/abc", "deployments", "health"])
    async def test_without_a_token_the_server_refuses(self, jp_fetch: Any, path: str) -> None:
        for header in ("", "token wrong-token"):
            with pytest.raises(HTTPClientError) as caught:
                await jp_fetch("kernelflow", "api", path, headers={"Authorization": header})
            assert caught.value.code == 403


class TestHealth:
    async def test_names_the_version_and_the_store(self, jp_fetch: Any, store: Any) -> None:
        import kernelflow

        body = await get_json(jp_fetch, "health")
        assert body["status"] == "ok"
        assert body["version"] == kernelflow.__version__
        assert body["home"] == str(store.home)


class TestRuns:
    async def test_an_empty_store_has_no_runs(self, jp_fetch: Any) -> None:
        body = await get_json(jp_fetch, "runs")
        assert body == {"runs": [], "offset": 0, "limit": 50, "has_more": False}

    async def test_lists_recorded_runs_newest_first(self, jp_fetch: Any) -> None:
        ids = record_runs()
        body = await get_json(jp_fetch, "runs")
        runs = body["runs"]
        assert [r["flow_name"] for r in runs] == ["broken", "load", "etl"]
        by_name = {r["flow_name"]: r for r in runs}
        etl_run = by_name["etl"]
        assert etl_run["id"] == ids["etl"]
        assert etl_run["state_name"] == "Completed" and etl_run["state_type"] == "COMPLETED"
        assert str(etl_run["parameters"]["n"]) == "3"
        assert etl_run["task_runs"] == {"total": 3, "by_state": {"Completed": 3}}
        assert etl_run["duration_s"] > 0
        assert etl_run["start_time"].endswith("Z") and etl_run["end_time"] >= etl_run["start_time"]
        assert by_name["load"]["parent_flow_run_id"] == ids["etl"]
        failed = by_name["broken"]
        assert failed["state_name"] == "Failed"
        assert "100% garbage" in failed["state_message"]
        assert failed["task_runs"] == {"total": 1, "by_state": {"Failed": 1}}

    @pytest.mark.parametrize(
        ("state", "expected"),
        [
            ("Failed", ["broken"]),
            ("failed", ["broken"]),
            ("COMPLETED", ["load", "etl"]),
            ("completed", ["load", "etl"]),
            ("Cached", []),
            ("", ["broken", "load", "etl"]),
        ],
    )
    async def test_filters_by_state_name_or_type(
        self, jp_fetch: Any, state: str, expected: list[str]
    ) -> None:
        record_runs()
        body = await get_json(jp_fetch, "runs", state=state)
        assert [r["flow_name"] for r in body["runs"]] == expected

    async def test_filters_by_flow_and_pages(self, jp_fetch: Any) -> None:
        record_runs()
        record_runs()
        body = await get_json(jp_fetch, "runs", flow="etl")
        assert [r["flow_name"] for r in body["runs"]] == ["etl", "etl"]
        everything = (await get_json(jp_fetch, "runs"))["runs"]
        assert len(everything) == 6
        first = await get_json(jp_fetch, "runs", limit=4)
        assert [r["id"] for r in first["runs"]] == [r["id"] for r in everything[:4]]
        assert first["has_more"] is True
        rest = await get_json(jp_fetch, "runs", limit=4, offset=4)
        assert [r["id"] for r in rest["runs"]] == [r["id"] for r in everything[4:]]
        assert rest["has_more"] is False and rest["offset"] == 4

    @pytest.mark.parametrize(
        ("params", "words"),
        [
            ({"state": "Finished"}, "Unknown state 'Finished'"),
            ({"state": "'; DROP TABLE flow_runs; --"}, "Unknown state"),
            ({"limit": "0"}, "limit='0'"),
            ({"limit": "ten"}, "limit='ten'"),
            ({"limit": "100000"}, "limit='100000'"),
            ({"offset": "-1"}, "offset='-1'"),
        ],
    )
    async def test_bad_filters_are_400_with_one_line(
        self, jp_fetch: Any, params: dict[str, str], words: str
    ) -> None:
        record_runs()
        code, body = await get_error(jp_fetch, "runs", **params)
        assert code == 400
        assert words in body["message"] and "\n" not in body["message"]
        assert body["reason"] == "ConfigurationError"
        assert len((await get_json(jp_fetch, "runs"))["runs"]) == 3  # nothing was dropped


class TestRunDetail:
    async def test_shows_task_runs_subflows_and_logs(self, jp_fetch: Any) -> None:
        ids = record_runs()
        body = await get_json(jp_fetch, "runs", ids["etl"])
        assert body["run"]["id"] == ids["etl"]
        assert body["run"]["task_runs"]["total"] == 3
        assert [t["name"] for t in body["task_runs"]] == ["add_one-0", "add_one-1", "add_one-2"]
        assert {t["state_name"] for t in body["task_runs"]} == {"Completed"}
        assert all(t["flow_run_id"] == ids["etl"] for t in body["task_runs"])
        assert [s["id"] for s in body["subflows"]] == [ids["load"]]
        assert body["subflows"][0]["task_runs"]["total"] == 1
        messages = [line["message"] for line in body["logs"]]
        assert "starting etl with n=3" in messages
        assert {"adding one to 0", "adding one to 1", "adding one to 2"} <= set(messages)
        assert body["logs_omitted"] == 0
        assert [line["timestamp"] for line in body["logs"]] == sorted(
            line["timestamp"] for line in body["logs"]
        )

    async def test_a_failed_run_shows_why(self, jp_fetch: Any) -> None:
        ids = record_runs()
        body = await get_json(jp_fetch, "runs", ids["broken"])
        (task_run,) = body["task_runs"]
        assert task_run["state_name"] == "Failed"
        assert "100% garbage" in task_run["state_message"]

    async def test_a_unique_prefix_finds_the_run(self, jp_fetch: Any) -> None:
        ids = record_runs()
        body = await get_json(jp_fetch, "runs", ids["broken"][:-2])
        assert body["run"]["id"] == ids["broken"]

    @pytest.mark.parametrize("run_id", ["0000dead-beef", "no such run", "%27%3B--"])
    async def test_an_unknown_id_is_404(self, jp_fetch: Any, run_id: str) -> None:
        record_runs()
        code, body = await get_error(jp_fetch, "runs", run_id)
        assert code == 404
        assert body["reason"] == "RunNotFoundError"
        assert "kernelflow runs ls" in body["message"]

    async def test_an_ambiguous_prefix_is_404(self, jp_fetch: Any) -> None:
        ids = record_runs()
        common = min(len(a) for a in ids.values())
        values = list(ids.values())
        prefix = next(
            values[0][:n]
            for n in range(common, 0, -1)
            if all(v.startswith(values[0][:n]) for v in values)
        )
        code, body = await get_error(jp_fetch, "runs", prefix)
        assert code == 404
        assert "give more characters" in body["message"]


class TestStoreErrors:
    async def test_a_locked_store_is_409(
        self, jp_fetch: Any, store: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from kernelflow.store.db import connect

        record_runs()
        monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "0.2")
        with connect(store.paths):  # another program holds the database for writing
            code, body = await get_error(jp_fetch, "runs")
        assert code == 409
        assert body["reason"] == "StoreLockedError"
        assert len((await get_json(jp_fetch, "runs"))["runs"]) == 3


class TestDeployments:
    async def test_none_yet(self, jp_fetch: Any) -> None:
        assert await get_json(jp_fetch, "deployments") == {"deployments": [], "note": None}

    async def test_a_store_without_the_table_answers_with_a_note(
        self, jp_fetch: Any, store: Any
    ) -> None:
        from kernelflow.store.db import connect

        with connect(store.paths) as con:  # as a store written before deployments existed
            con.execute("DROP TABLE deployments")
        body = await get_json(jp_fetch, "deployments")
        assert body["deployments"] == []
        assert "no deployments table" in body["note"]

    @pytest.mark.slow
    async def test_lists_schedules_next_and_last_runs(
        self, jp_fetch: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import datetime as dt
        from zoneinfo import ZoneInfo

        import nbformat

        from kernelflow.deployments import deploy, run_deployment

        nb = nbformat.v4.new_notebook(
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            }
        )
        nb.cells = [
            nbformat.v4.new_code_cell("n = 2", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("print(n * 2)"),
        ]
        notebook = tmp_path / "report.ipynb"
        nbformat.write(nb, notebook)
        monkeypatch.chdir(tmp_path)
        deploy(notebook, "daily-report", cron="0 6 * * *", timezone="Europe/Berlin")
        deploy(notebook, "hourly", interval=3600, paused=True)
        run = run_deployment("daily-report", parameters={"n": 5})
        assert run.state.is_completed()

        before = dt.datetime.now(dt.timezone.utc)
        body = await get_json(jp_fetch, "deployments")
        assert body["note"] is None
        daily, hourly = body["deployments"]
        assert daily["name"] == "daily-report" and hourly["name"] == "hourly"
        assert daily["schedule"] == "cron '0 6 * * *' (Europe/Berlin)"
        assert daily["paused"] is False and daily["problem"] is None
        next_run = dt.datetime.fromisoformat(daily["next_run"].replace("Z", "+00:00"))
        assert before < next_run <= before + dt.timedelta(days=1)
        local = next_run.astimezone(ZoneInfo("Europe/Berlin"))
        assert (local.hour, local.minute) == (6, 0)
        assert daily["last_run"]["id"] == run.id
        assert daily["last_run"]["state_name"] == "Completed"
        assert hourly["paused"] is True and hourly["next_run"] is None
        assert hourly["schedule"] == "every 3600 s" and hourly["last_run"] is None

        detail = await get_json(jp_fetch, "runs", run.id)
        assert detail["run"]["deployment_id"] == daily["id"]
        assert str(detail["run"]["parameters"]["n"]) == "5"
