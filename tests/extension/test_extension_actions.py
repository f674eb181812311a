"""The REST write endpoints, through a real in-process Jupyter server and a real store.

Every action with good input, bad input (400 / 404 / 409 with one line,
never a 500) and, in test_extension_authorization.py, without permission
(403). Runs that would start a kernel are queued with this server's
scheduler off, so these tests run no notebook; test_extension_app.py runs
them for real.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from tornado.httpclient import HTTPClientError

from kernelflow import flow, pause_flow_run, settings

pytestmark = pytest.mark.timeout(120)


#: The extension without its scheduler (see conftest's ``jp_server_config``).
KERNELFLOW_APP = {"run_scheduler": False}


def write_notebook(path: Path, parameters: str = "n: int = 2\nlabel = 'x'") -> Path:
    nb = nbformat.v4.new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
    )
    cells = [nbformat.v4.new_code_cell("print(n * 2)")]
    if parameters is not None:
        cells.insert(0, nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells = cells
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebook(jp_root_dir: Path) -> str:
    """``reports/report.ipynb`` under the server's root, with a typed parameters cell."""
    write_notebook(jp_root_dir / "reports" / "report.ipynb")
    return "reports/report.ipynb"


async def call(jp_fetch: Any, method: str, endpoint: str, body: Any = None, **params: Any) -> Any:
    kwargs: dict[str, Any] = {"method": method, "params": params}
    if method not in ("GET", "DELETE"):
        kwargs["body"] = body if isinstance(body, (bytes, str)) else json.dumps(body or {})
    response = await jp_fetch("kernelflow", "api", *endpoint.split("/"), **kwargs)
    return response.code, json.loads(response.body)


async def error(jp_fetch: Any, method: str, endpoint: str, body: Any = None, **params: Any) -> Any:
    with pytest.raises(HTTPClientError) as caught:
        await call(jp_fetch, method, endpoint, body, **params)
    answer = json.loads(caught.value.response.body)
    assert isinstance(answer["message"], str) and "\n" not in answer["message"], answer
    assert answer["message"] and answer["reason"]
    return caught.value.code, answer


async def deploy(jp_fetch: Any, notebook: str, name: str = "daily", **fields: Any) -> Any:
    body = {"notebook": notebook, "name": name, "interval": "1h", **fields}
    code, answer = await call(jp_fetch, "POST", "deployments", body)
    assert code == 201, answer
    return answer


class TestScheduler:
    async def test_without_a_scheduler_it_warns_that_nothing_fires(self, jp_fetch: Any) -> None:
        code, answer = await call(jp_fetch, "GET", "scheduler")
        assert code == 200
        assert answer["here"] is False and answer["holder"] is None
        assert "will not fire" in answer["warning"]

    async def test_names_another_process_holding_the_lease(self, jp_fetch: Any) -> None:
        from kernelflow.deployments.scheduler import Scheduler

        other = Scheduler(label="kernelflow scheduler")
        other.start()
        try:
            assert other.active.wait(30)
            code, answer = await call(jp_fetch, "GET", "scheduler")
        finally:
            other.stop()
        assert code == 200 and answer["warning"] is None and answer["here"] is False
        holder = answer["holder"]
        assert holder["pid"] == os.getpid() and holder["host"] == os.uname().nodename
        assert holder["process"] == "kernelflow scheduler"
        since = dt.datetime.fromisoformat(holder["since"])
        assert abs((dt.datetime.now(dt.timezone.utc) - since).total_seconds()) < 60
        _, after = await call(jp_fetch, "GET", "scheduler")
        assert after["holder"] is None  # released when it stopped


class TestSchedulePreview:
    async def test_cron_in_words_and_the_next_times_in_its_zone(self, jp_fetch: Any) -> None:
        body = {"cron": "30 8 * * 1-5", "timezone": "Europe/Berlin", "count": 3}
        code, answer = await call(jp_fetch, "POST", "schedule/preview", body)
        assert code == 200
        assert answer["description"] == (
            "Every weekday (Monday to Friday) at 08:30 (Europe/Berlin)"
        )
        assert answer["timezone"] == "Europe/Berlin"
        times = [dt.datetime.fromisoformat(t) for t in answer["next"]]
        assert len(times) == 3 and times == sorted(times)
        for when in times:
            assert when.utcoffset() in (dt.timedelta(hours=1), dt.timedelta(hours=2))
            assert (when.hour, when.minute, when.weekday() < 5) == (8, 30, True)

    async def test_an_interval_as_text_with_five_times_by_default(self, jp_fetch: Any) -> None:
        code, answer = await call(jp_fetch, "POST", "schedule/preview", {"interval": "10m"})
        assert code == 200 and answer["description"] == "Every 10 minutes"
        times = [dt.datetime.fromisoformat(t) for t in answer["next"]]
        assert len(times) == 5
        assert {(b - a).total_seconds() for a, b in itertools.pairwise(times)} == {600.0}

    @pytest.mark.parametrize(
        ("body", "words"),
        [
            ({"cron": "61 * * * *"}, "minute field"),
            ({"cron": "* * *"}, "has 3 fields"),
            ({"cron": "0 6 * * *", "timezone": "Mars/Olympus"}, "Unknown time zone"),
            ({"interval": "soon"}, "interval"),
            ({"interval": -5}, "interval"),
            ({"cron": "0 6 * * *", "interval": 60}, "not both"),
            ({}, "Give 'cron' or 'interval'"),
            ({"cron": "0 6 * * *", "count": 21}, "count"),
            ({"cron": "0 6 * * *", "count": "3"}, "count"),
            ({"cron": 5}, "must be text"),
            ({"cron": "0 6 * * *", "every": 1}, "takes no 'every'"),
        ],
    )
    async def test_bad_schedules_are_400_with_one_line(
        self, jp_fetch: Any, body: dict[str, Any], words: str
    ) -> None:
        code, answer = await error(jp_fetch, "POST", "schedule/preview", body)
        assert code == 400 and words in answer["message"], answer

    @pytest.mark.parametrize("raw", [b"{", b"[1, 2]", b"\xff", b"null"])
    async def test_a_body_that_is_no_json_object_is_400(self, jp_fetch: Any, raw: bytes) -> None:
        code, answer = await error(jp_fetch, "POST", "schedule/preview", raw)
        assert code == 400 and answer["reason"] == "ConfigurationError"


class TestNotebookParameters:
    async def test_reads_the_typed_parameters_cell(self, jp_fetch: Any, notebook: str) -> None:
        code, answer = await call(jp_fetch, "GET", "notebooks/parameters", path=notebook)
        assert code == 200 and answer["path"] == notebook
        assert answer["parameters"] == [
            {"name": "n", "type": "int", "default": 2, "default_text": "2"},
            {"name": "label", "type": "str", "default": "x", "default_text": "'x'"},
        ]

    async def test_a_notebook_without_the_cell_has_none(
        self, jp_fetch: Any, jp_root_dir: Path
    ) -> None:
        write_notebook(jp_root_dir / "plain.ipynb", parameters=None)
        _, answer = await call(jp_fetch, "GET", "notebooks/parameters", path="plain.ipynb")
        assert answer["parameters"] == []

    async def test_a_missing_notebook_is_404(self, jp_fetch: Any) -> None:
        code, answer = await error(jp_fetch, "GET", "notebooks/parameters", path="gone.ipynb")
        assert code == 404 and answer["reason"] == "NotebookNotFoundError"

    @pytest.mark.parametrize(
        ("path", "words"),
        [
            ("../outside.ipynb", "outside the server's root"),
            ("/etc/passwd", "not a notebook"),  # a leading / is the root, as in Jupyter
            ("reports/../../x.ipynb", "outside the server's root"),
            ("notes.txt", "not a notebook"),
            ("", "relative to the server's root"),
        ],
    )
    async def test_paths_outside_the_root_or_not_notebooks_are_400(
        self, jp_fetch: Any, jp_root_dir: Path, path: str, words: str
    ) -> None:
        (jp_root_dir.parent / "outside.ipynb").write_text("{}")
        code, answer = await error(jp_fetch, "GET", "notebooks/parameters", path=path)
        assert code == 400 and words in answer["message"], answer

    async def test_without_a_path_it_is_400(self, jp_fetch: Any) -> None:
        code, _ = await error(jp_fetch, "GET", "notebooks/parameters")
        assert code == 400


class TestCreateDeployment:
    async def test_deploys_and_answers_as_the_list_shows_it(
        self, jp_fetch: Any, notebook: str, jp_root_dir: Path
    ) -> None:
        created = await deploy(
            jp_fetch,
            notebook,
            parameters={"n": "5"},
            timeout="10m",
            retries=2,
            retry_delay=30,
            catchup="latest",
            notify=["https://example.invalid/hook"],
        )
        assert created["name"] == "daily" and created["schedule"] == "every 3600 s"
        assert created["paused"] is False and created["problem"] is None
        assert created["notebook"] == str((jp_root_dir / notebook).resolve())
        _, listed = await call(jp_fetch, "GET", "deployments")
        assert listed["deployments"] == [created]
        from kernelflow.deployments import get

        stored = get("daily")
        assert stored.parameters == {"n": 5}  # converted to the parameter's type
        assert (stored.timeout, stored.retries, stored.retry_delay) == (600.0, 2, 30.0)
        assert (stored.catchup, stored.notify) == ("latest", ["https://example.invalid/hook"])

    async def test_paused_with_a_cron_in_a_zone(self, jp_fetch: Any, notebook: str) -> None:
        body = {"notebook": notebook, "name": "morning", "cron": "0 6 * * *"}
        body.update(timezone="Europe/Berlin", paused=True)
        code, created = await call(jp_fetch, "POST", "deployments", body)
        assert code == 201 and created["paused"] is True and created["next_run"] is None
        assert created["schedule"] == "cron '0 6 * * *' (Europe/Berlin)"

    async def test_an_existing_name_is_409(self, jp_fetch: Any, notebook: str) -> None:
        await deploy(jp_fetch, notebook)
        body = {"notebook": notebook, "name": "daily", "cron": "0 6 * * *"}
        code, answer = await error(jp_fetch, "POST", "deployments", body)
        assert code == 409 and "already" in answer["message"]

    @pytest.mark.parametrize(
        ("fields", "words"),
        [
            ({"parameters": {"m": 1}}, "no parameter 'm'"),
            ({"parameters": {"n": "many"}}, "is an int"),
            ({"parameters": {"n": 1.5}}, "is an int"),
            ({"parameters": [1]}, "'parameters' must be an object"),
            ({"cron": "0 25 * * *", "interval": None}, "hour field"),
            ({"interval": "0s"}, "interval"),
            ({"timezone": "Nowhere/Land"}, "Unknown time zone"),
            ({"retries": -1}, "--retries"),
            ({"retries": "2"}, "'retries' must be a whole number"),
            ({"catchup": "maybe"}, "--catchup"),
            ({"notify": ["ftp://x"]}, "http(s) URL"),
            ({"notify": "https://x"}, "'notify' must be a list"),
            ({"paused": "yes"}, "'paused' must be true or false"),
            ({"name": "bad name/with slash"}, "name"),
            ({"name": 7}, "'name'"),
            ({"notebook": "../x.ipynb"}, "outside the server's root"),
            ({"notebook": "missing.ipynb"}, "No notebook"),
            ({"kernel": "python3"}, "takes no 'kernel'"),
        ],
    )
    async def test_bad_input_is_400_and_stores_nothing(
        self, jp_fetch: Any, notebook: str, fields: dict[str, Any], words: str
    ) -> None:
        body = {"notebook": notebook, "name": "daily", "interval": "1h", **fields}
        code, answer = await error(jp_fetch, "POST", "deployments", body)
        assert code == 400 and words in answer["message"], answer
        _, listed = await call(jp_fetch, "GET", "deployments")
        assert listed["deployments"] == []


class TestChangeDeployment:
    async def test_pause_resume_and_change_the_schedule(self, jp_fetch: Any, notebook: str) -> None:
        await deploy(jp_fetch, notebook, parameters={"n": 3})
        code, paused = await call(jp_fetch, "PATCH", "deployments/daily", {"paused": True})
        assert code == 200 and paused["paused"] is True and paused["next_run"] is None
        _, resumed = await call(jp_fetch, "PATCH", "deployments/daily", {"paused": False})
        assert resumed["paused"] is False and resumed["next_run"] is not None
        change = {"cron": "0 6 * * *", "timezone": "Europe/Berlin", "retries": 1}
        _, changed = await call(jp_fetch, "PATCH", "deployments/daily", change)
        assert changed["schedule"] == "cron '0 6 * * *' (Europe/Berlin)"
        from kernelflow.deployments import get

        stored = get("daily")
        assert (stored.interval, stored.retries, stored.parameters) == (None, 1, {"n": 3})

    async def test_the_notebook_may_be_gone_since_the_deploy(
        self, jp_fetch: Any, notebook: str, jp_root_dir: Path
    ) -> None:
        await deploy(jp_fetch, notebook)
        (jp_root_dir / notebook).unlink()
        _, changed = await call(jp_fetch, "PATCH", "deployments/daily", {"interval": 7200})
        assert changed["schedule"] == "every 7200 s"
        assert changed["notebook"] == str((jp_root_dir / notebook).resolve())

    async def test_an_unknown_deployment_is_404(self, jp_fetch: Any) -> None:
        code, answer = await error(jp_fetch, "PATCH", "deployments/nope", {"paused": True})
        assert code == 404 and answer["reason"] == "DeploymentNotFoundError"

    @pytest.mark.parametrize(
        "body",
        [{"cron": "nonsense"}, {"parameters": {"x": 1}}, {"paused": 1}, {"name": "other"}],
    )
    async def test_bad_changes_are_400_and_change_nothing(
        self, jp_fetch: Any, notebook: str, body: dict[str, Any]
    ) -> None:
        before = await deploy(jp_fetch, notebook)
        code, _ = await error(jp_fetch, "PATCH", "deployments/daily", body)
        assert code == 400
        _, listed = await call(jp_fetch, "GET", "deployments")
        assert listed["deployments"] == [before]

    async def test_delete_then_404(self, jp_fetch: Any, notebook: str) -> None:
        await deploy(jp_fetch, notebook)
        snapshots = settings.paths().home / "deployments" / "daily"
        assert snapshots.is_dir()
        code, answer = await call(jp_fetch, "DELETE", "deployments/daily")
        assert (code, answer) == (200, {"deleted": "daily"})
        assert not snapshots.exists()
        code, _ = await error(jp_fetch, "DELETE", "deployments/daily")
        assert code == 404


@flow(name="plain-flow")
def plain_flow() -> int:
    return 1


class TestRunActions:
    async def test_run_now_is_queued_then_cancel_then_rerun(
        self, jp_fetch: Any, notebook: str
    ) -> None:
        from kernelflow.store.fires import fire_parameters
        from kernelflow.store.queries import get_flow_run

        await deploy(jp_fetch, notebook)
        code, queued = await call(
            jp_fetch, "POST", "deployments/daily/runs", {"parameters": {"n": "7"}}
        )
        assert code == 202 and queued["state"] == "Scheduled" and queued["name"]
        run_id = queued["run_id"]
        assert fire_parameters(run_id) == {"n": 7}

        code, cancelled = await call(jp_fetch, "POST", f"runs/{run_id}/cancel")
        # Nobody started it: claimed here so that no scheduler does, and Cancelled.
        assert code == 202 and cancelled == {"run_id": run_id, "state": "Cancelled"}
        assert get_flow_run(run_id)["state_name"].iloc[0] == "Cancelled"
        code, answer = await error(jp_fetch, "POST", f"runs/{run_id}/cancel")
        assert code == 409 and "already Cancelled" in answer["message"]

        code, again = await call(jp_fetch, "POST", f"runs/{run_id}/rerun")
        assert code == 202 and again["run_id"] != run_id and again["rerun_of"] == run_id
        assert again["deployment"] == "daily" and again["state"] == "Scheduled"
        assert fire_parameters(again["run_id"]) == {"n": 7}

    async def test_run_now_with_bad_input(self, jp_fetch: Any, notebook: str) -> None:
        await deploy(jp_fetch, notebook)
        for body, words in (
            ({"parameters": {"n": "x"}}, "is an int"),
            ({"parameters": {"zzz": 1}}, "no parameter"),
            ({"parameters": 3}, "must be an object"),
            ({"when": "now"}, "takes no 'when'"),
        ):
            code, answer = await error(jp_fetch, "POST", "deployments/daily/runs", body)
            assert code == 400 and words in answer["message"], answer
        code, _ = await error(jp_fetch, "POST", "deployments/nope/runs", {})
        assert code == 404

    async def test_a_running_run_of_another_process_is_asked_to_cancel(
        self, jp_fetch: Any, notebook: str
    ) -> None:
        from kernelflow.deployments import records
        from kernelflow.deployments.scheduler import cancel_requests_dir

        await deploy(jp_fetch, notebook)
        _, queued = await call(jp_fetch, "POST", "deployments/daily/runs", {})
        run_id = queued["run_id"]
        assert records.claim_attempt(run_id, 1)  # as the lease holder starting it does
        code, answer = await call(jp_fetch, "POST", f"runs/{run_id}/cancel")
        assert code == 202 and answer == {"run_id": run_id, "state": "Cancelling"}
        assert (cancel_requests_dir() / run_id).exists()

    async def test_flow_runs_that_are_not_deployment_runs_are_409(self, jp_fetch: Any) -> None:
        plain_flow()
        from kernelflow.store.queries import sql

        run_id = str(sql("SELECT id FROM flow_runs")["id"].iloc[0])
        for action in ("cancel", "rerun"):
            code, answer = await error(jp_fetch, "POST", f"runs/{run_id}/{action}")
            assert code == 409 and "not a deployment run" in answer["message"]
        code, answer = await error(jp_fetch, "POST", f"runs/{run_id}/resume", {"input": {}})
        assert code == 409 and answer["reason"] == "NotPausedError"

    @pytest.mark.parametrize("action", ["cancel", "rerun", "resume", "notebook", "html"])
    async def test_unknown_runs_are_404(self, jp_fetch: Any, action: str) -> None:
        method = "GET" if action in ("notebook", "html") else "POST"
        code, answer = await error(jp_fetch, method, f"runs/0000dead/{action}")
        assert code == 404 and answer["reason"] == "RunNotFoundError"

    async def test_resume_a_run_paused_awaiting_input(self, jp_fetch: Any) -> None:
        import queue
        from concurrent.futures import ThreadPoolExecutor

        from kernelflow.engine import subscribe, unsubscribe

        paused: queue.Queue = queue.Queue()

        def listener(kind: str, run: Any, state: Any) -> None:
            if kind == "flow" and state.is_paused():
                paused.put(run)

        @flow(name="waits-for-a-number")
        def waits() -> int:
            return pause_flow_run(wait_for_input=int, timeout=60) * 2

        subscribe(listener)
        try:
            with ThreadPoolExecutor(1) as pool:
                future = pool.submit(waits)
                run = paused.get(timeout=30)
                code, answer = await error(
                    jp_fetch, "POST", f"runs/{run.id}/resume", {"input": {"value": "x"}}
                )
                assert code == 400 and answer["reason"] == "RunInputError"  # still paused
                code, answer = await call(
                    jp_fetch, "POST", f"runs/{run.id}/resume", {"input": {"value": 21}}
                )
                assert (code, answer) == (200, {"run_id": run.id, "state": "Running"})
                assert future.result(timeout=30) == 42
        finally:
            unsubscribe(listener)
        code, answer = await error(jp_fetch, "POST", f"runs/{run.id}/resume", {})
        assert code == 409 and answer["reason"] == "NotPausedError"

    async def test_resume_input_must_be_an_object(self, jp_fetch: Any) -> None:
        plain_flow()
        from kernelflow.store.queries import sql

        run_id = str(sql("SELECT id FROM flow_runs")["id"].iloc[0])
        code, answer = await error(jp_fetch, "POST", f"runs/{run_id}/resume", {"input": [1]})
        assert code == 400 and "'input' must be an object" in answer["message"]


class TestExecutedNotebooks:
    async def test_served_read_only_from_the_store_outside_the_root(
        self, jp_fetch: Any, notebook: str, jp_root_dir: Path
    ) -> None:
        await deploy(jp_fetch, notebook)
        _, queued = await call(jp_fetch, "POST", "deployments/daily/runs", {})
        run_id = queued["run_id"]
        code, answer = await error(jp_fetch, "GET", f"runs/{run_id}/notebook")
        assert code == 404 and "no executed notebook" in answer["message"]
        # Where a worker writes them (RunExecution.job); the store is outside the root.
        outputs = settings.paths().outputs / "daily"
        assert jp_root_dir not in outputs.parents
        outputs.mkdir(parents=True)
        nb = write_notebook(outputs / f"{run_id}.ipynb")
        (outputs / f"{run_id}.html").write_text("<html><script>alert(1)</script></html>")

        response = await jp_fetch("kernelflow", "api", "runs", run_id, "notebook")
        assert response.code == 200
        assert response.headers["Content-Type"] == "application/x-ipynb+json"
        assert json.loads(response.body) == json.loads(nb.read_text())
        response = await jp_fetch("kernelflow", "api", "runs", run_id[:12], "html")
        assert response.headers["Content-Type"].startswith("text/html")
        assert response.headers["Content-Security-Policy"] == "sandbox"
        assert b"alert(1)" in response.body
        for method in ("PUT", "DELETE"):
            with pytest.raises(HTTPClientError) as caught:
                await jp_fetch(
                    "kernelflow",
                    "api",
                    "runs",
                    run_id,
                    "notebook",
                    method=method,
                    **({"body": b"{}"} if method == "PUT" else {}),
                )
            assert caught.value.code == 405
