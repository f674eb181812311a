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


@flow(name="chatty")
def chatty(lines: int) -> None:
    log = get_run_logger()
    for i in range(lines):
        log.info("line %04d", i)


class TestRunLogs:
    """A run with 3,000 log lines, paged in SQL: every line reachable, pages that chain."""

    LINES = 3000

    @pytest.fixture
    def run_id(self) -> str:
        state = chatty(self.LINES, return_state=True)
        assert state.is_completed()
        import kernelflow

        return str(kernelflow.sql("SELECT id FROM flow_runs")["id"].iloc[0])

    @staticmethod
    def ours(page: dict[str, Any]) -> list[str]:
        return [m["message"] for m in page["logs"] if m["message"].startswith("line ")]

    async def test_first_next_and_last_page_reach_every_line_in_order(
        self, jp_fetch: Any, run_id: str
    ) -> None:
        from kernelflow.store.queries import logs_of

        everything = list(logs_of(run_id)["message"])
        first = await get_json(jp_fetch, "runs", run_id, "logs", offset=0, limit=1000)
        assert first["run_id"] == run_id and first["total"] == len(everything) >= self.LINES
        assert (first["offset"], first["limit"], first["earlier"]) == (0, 1000, None)
        assert [m["message"] for m in first["logs"]] == everything[:1000]
        assert self.ours(first)[0] == "line 0000"  # the earliest line is reachable
        assert first["later"] == {"offset": 1000, "limit": 1000}

        second = await get_json(jp_fetch, "runs", run_id, "logs", **first["later"])
        assert [m["message"] for m in second["logs"]] == everything[1000:2000]
        assert second["earlier"] == {"offset": 0, "limit": 1000}

        pages, page = [first, second], second
        while page["later"] is not None:
            page = await get_json(jp_fetch, "runs", run_id, "logs", **page["later"])
            pages.append(page)
        assert page["later"] is None and len(pages) == -(-len(everything) // 1000)
        assert self.ours(page)[-1] == "line 2999"
        joined = [m["message"] for p in pages for m in p["logs"]]
        assert joined == everything
        assert [m for m in joined if m.startswith("line ")] == [
            f"line {i:04d}" for i in range(self.LINES)
        ]

    async def test_by_default_the_newest_page_and_the_way_back(
        self, jp_fetch: Any, run_id: str
    ) -> None:
        newest = await get_json(jp_fetch, "runs", run_id, "logs")
        total = newest["total"]
        assert (newest["offset"], newest["limit"], newest["later"]) == (total - 200, 200, None)
        assert newest["earlier"] == {"offset": total - 400, "limit": 200}
        assert len(newest["logs"]) == 200
        # Walking back from the newest page reaches the first line, every line once.
        from kernelflow.store.queries import logs_of

        page, pages = newest, [newest]
        while page["earlier"] is not None:
            page = await get_json(jp_fetch, "runs", run_id, "logs", **page["earlier"])
            pages.insert(0, page)
        assert page["offset"] == 0
        assert len(pages) - 1 == -(-(total - 200) // 200)
        joined = [m["message"] for p in pages for m in p["logs"]]
        assert joined == list(logs_of(run_id)["message"])
        assert next(m for m in joined if m.startswith("line ")) == "line 0000"

    async def test_the_run_detail_carries_one_page_and_takes_its_parameters(
        self, jp_fetch: Any, run_id: str
    ) -> None:
        detail = await get_json(jp_fetch, "runs", run_id)
        total = detail["logs_page"]["total"]
        assert len(detail["logs"]) == 200 and detail["logs_omitted"] == total - 200
        newest = await get_json(jp_fetch, "runs", run_id, "logs")
        assert detail["logs"] == newest["logs"]
        assert detail["logs_page"] == {
            k: v for k, v in newest.items() if k not in ("logs", "run_id")
        }
        oldest = await get_json(jp_fetch, "runs", run_id, log_offset=0, log_limit=5)
        assert len(oldest["logs"]) == 5 and oldest["logs_omitted"] == 0
        assert oldest["logs_page"]["later"] == {"offset": 5, "limit": 5}
        assert "line 0000" in [m["message"] for m in oldest["logs"]]

    async def test_past_the_end_is_empty_and_points_back(self, jp_fetch: Any, run_id: str) -> None:
        page = await get_json(jp_fetch, "runs", run_id, "logs", offset=10**6, limit=100)
        total = page["total"]
        assert page["logs"] == [] and page["later"] is None
        assert page["earlier"] == {"offset": total - 100, "limit": 100}

    @pytest.mark.parametrize(
        ("path", "params", "words"),
        [
            ("logs", {"limit": "0"}, "limit='0'"),
            ("logs", {"limit": "1001"}, "limit='1001'"),
            ("logs", {"limit": "ten"}, "limit='ten'"),
            ("logs", {"offset": "-1"}, "offset='-1'"),
            ("logs", {"offset": "1.5"}, "offset='1.5'"),
            ("logs", {"offset": "9" * 5000}, "offset='999"),
            ("", {"log_limit": "all"}, "log_limit='all'"),
            ("", {"log_offset": "-5"}, "log_offset='-5'"),
        ],
    )
    async def test_bad_paging_is_400_with_one_line(
        self, jp_fetch: Any, run_id: str, path: str, params: dict[str, str], words: str
    ) -> None:
        code, body = await get_error(jp_fetch, "runs", run_id, *[p for p in [path] if p], **params)
        assert code == 400 and body["reason"] == "ConfigurationError"
        assert words in body["message"] and "\n" not in body["message"]

    async def test_logs_of_an_unknown_run_are_404(self, jp_fetch: Any) -> None:
        code, body = await get_error(jp_fetch, "runs", "0000dead", "logs")
        assert code == 404 and body["reason"] == "RunNotFoundError"


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
