"""``kernelflow.artifacts``: Prefect's ``prefect.artifacts``, stored in the store and shown
by ``runs show``, the REST API and the live view (the view: tests/widgets)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid

import pytest
from click.testing import CliRunner

import kernelflow
from kernelflow import flow, task
from kernelflow.artifacts import (
    Artifact,
    acreate_markdown_artifact,
    acreate_progress_artifact,
    aupdate_progress_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    summarize,
    update_progress_artifact,
)
from kernelflow.cli import main
from kernelflow.store.journal import record


def rows() -> list[dict]:
    """Every artifact in the store, oldest first (after folding the journals)."""
    frame = kernelflow.sql(
        "SELECT id, key, type, description, data, flow_run_id, task_run_id, "
        "created IS NOT NULL AS has_created, updated >= created AS updated_after "
        "FROM artifacts ORDER BY created, id"
    )
    return [
        {k: (None if v is None or v != v else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def only(**match: object) -> dict:
    found = [r for r in rows() if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, found
    return found[0]


@flow(flow_run_name="report-run")
def report() -> dict:
    create_markdown_artifact("# Sales\nUp 4 %", key="sales-report", description="weekly")
    create_link_artifact("https://example.com/data.csv", "the data", key="data-link")
    create_link_artifact("https://example.com/raw")
    ids = load()
    return {"flow_run_id": kernelflow.runtime.flow_run.id, **ids}


@task
def load() -> dict:
    table = create_table_artifact(
        [{"region": "north", "sales": 10.5}, {"region": "south", "sales": float("nan")}],
        key="sales-table",
    )
    progress = create_progress_artifact(0.0, key="load-progress", description="starting")
    for done in (25, 50, 75):
        update_progress_artifact(progress, done)
    update_progress_artifact(progress, 100, description="done")
    return {
        "table": table,
        "progress": progress,
        "task_run_id": kernelflow.runtime.task_run.id,
    }


class TestCreateInRuns:
    def test_each_kind_returns_a_uuid_and_is_stored_as_prefect_stores_it(self):
        ids = report()
        assert isinstance(ids["table"], uuid.UUID) and isinstance(ids["progress"], uuid.UUID)
        flow_run_id, task_run_id = ids["flow_run_id"], ids["task_run_id"]

        markdown = only(key="sales-report")
        assert (markdown["type"], markdown["data"], markdown["description"]) == (
            "markdown",
            "# Sales\nUp 4 %",
            "weekly",
        )
        assert markdown["flow_run_id"] == flow_run_id and markdown["task_run_id"] is None

        # Prefect stores a link as a markdown artifact: [text](link), the link when no text.
        assert only(key="data-link")["data"] == "[the data](https://example.com/data.csv)"
        assert only(key="data-link")["type"] == "markdown"
        assert only(data="[https://example.com/raw](https://example.com/raw)")["key"] is None

        table = only(key="sales-table")
        assert table["id"] == str(ids["table"]) and table["type"] == "table"
        assert json.loads(table["data"]) == [
            {"region": "north", "sales": 10.5},
            {"region": "south", "sales": None},  # NaN is not JSON: null, as Prefect does
        ]
        assert (table["flow_run_id"], table["task_run_id"]) == (flow_run_id, task_run_id)

        progress = only(key="load-progress")
        assert progress["id"] == str(ids["progress"]) and progress["type"] == "progress"
        assert float(progress["data"]) == 100.0, "the last update wins"
        assert progress["description"] == "done"
        assert progress["updated_after"]

    def test_table_shapes(self):
        create_table_artifact({"city": ["Oslo", "Lima"], "temp": [4, 19]}, key="columns")
        create_table_artifact([["a", 1], ["b", 2], ["c", 3]], key="lists")
        assert json.loads(only(key="columns")["data"]) == {
            "city": ["Oslo", "Lima"],
            "temp": [4, 19],
        }
        assert json.loads(only(key="lists")["data"]) == [["a", 1], ["b", 2], ["c", 3]]

    def test_outside_a_run_an_artifact_belongs_to_no_run(self):
        artifact_id = create_markdown_artifact("loose", key="loose")
        row = only(key="loose")
        assert row["id"] == str(artifact_id)
        assert row["flow_run_id"] is None and row["task_run_id"] is None

    def test_a_progress_update_keeps_the_description_unless_given(self):
        artifact_id = create_progress_artifact(10, key="p", description="first")
        assert update_progress_artifact(artifact_id, 20) == artifact_id
        assert update_progress_artifact(str(artifact_id), 30) == artifact_id
        row = only(key="p")
        assert (float(row["data"]), row["description"]) == (30.0, "first")

    def test_progress_outside_0_to_100_is_clamped_with_a_warning(self, caplog):
        artifact_id = create_progress_artifact(150, key="over")
        update_progress_artifact(create_progress_artifact(5, key="under"), -3)
        assert float(only(key="over")["data"]) == 100.0
        assert float(only(key="under")["data"]) == 0.0
        warnings = [r.getMessage() for r in caplog.records if r.name == "kernelflow.artifacts"]
        assert any("150" in w for w in warnings) and any("-3" in w for w in warnings)
        assert isinstance(artifact_id, uuid.UUID)

    def test_async_variants(self):
        async def main() -> tuple[uuid.UUID, uuid.UUID]:
            await acreate_markdown_artifact("async", key="async-md")
            progress = await acreate_progress_artifact(1, key="async-progress")
            return progress, await aupdate_progress_artifact(progress, 99)

        created, updated = asyncio.run(main())
        assert created == updated
        assert only(key="async-md")["data"] == "async"
        assert float(only(key="async-progress")["data"]) == 99.0


class TestValidation:
    @pytest.mark.parametrize("key", ["Upper", "under_score", "space key", "dot.key", 7])
    def test_keys_are_lowercase_letters_numbers_and_dashes(self, key):
        with pytest.raises(ValueError, match="lowercase letters, numbers, and dashes"):
            create_markdown_artifact("x", key=key)
        assert rows() == [], "nothing recorded"

    def test_a_table_has_one_of_three_shapes(self):
        with pytest.raises(ValueError, match="list of dicts, a dict of lists or a list of lists"):
            create_table_artifact("not a table")
        with pytest.raises(ValueError, match="to_dict"):
            create_table_artifact([{"a": 1}, [2]])

    def test_markdown_is_text_and_progress_a_number(self):
        with pytest.raises(ValueError, match="str"):
            create_markdown_artifact(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="number from 0 to 100"):
            create_progress_artifact("half")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="create_progress_artifact returned"):
            update_progress_artifact("not-an-id", 5)

    def test_values_json_lacks_are_stored_as_text(self):
        import datetime as dt

        create_table_artifact([{"day": dt.date(2024, 5, 1)}], key="dates")
        assert json.loads(only(key="dates")["data"]) == [{"day": "2024-05-01"}]


class TestArtifactGet:
    def test_get_returns_the_latest_version_of_a_key(self):
        create_markdown_artifact("v1", key="notes")
        create_markdown_artifact("v2", key="notes", description="second")
        latest = Artifact.get("notes")
        assert (latest.data, latest.description, latest.type) == ("v2", "second", "markdown")
        assert isinstance(latest.id, uuid.UUID) and latest.created.tzinfo is not None
        assert Artifact.get("no-such-key") is None

    def test_progress_data_reads_back_as_a_float(self):
        update_progress_artifact(create_progress_artifact(5, key="bar"), 42.5)
        assert Artifact.get("bar").data == 42.5

    def test_a_generic_artifact_stores_its_data_as_json(self):
        created = Artifact(type="metric", key="accuracy", data={"value": 0.93}).create()
        assert isinstance(created.id, uuid.UUID)
        found = Artifact.get("accuracy")
        assert (found.type, json.loads(found.data)) == ("metric", {"value": 0.93})


class TestFold:
    """Compaction folds creation and updates in any order, across batches and processes."""

    def test_an_update_folded_before_its_creation_is_kept(self):
        artifact_id, now = str(uuid.uuid4()), time.time()
        record({"ev": "artifact_update", "id": artifact_id, "data": "60.0", "t": now})
        assert kernelflow.sql("SELECT count(*) AS n FROM artifacts WHERE created IS NULL")[
            "n"
        ].tolist() == [1], "a placeholder until its creation arrives"
        record(
            {
                "ev": "artifact",
                "id": artifact_id,
                "key": "late",
                "type": "progress",
                "description": "made first, folded last",
                "data": "0.0",
                "flow_run_id": None,
                "task_run_id": None,
                "t": now - 1,
            }
        )
        row = only(key="late")
        assert (row["data"], row["description"], row["type"]) == (
            "60.0",
            "made first, folded last",
            "progress",
        )

    def test_another_process_updates_an_artifact_this_one_created(self, run_python):
        artifact_id = create_progress_artifact(10, key="shared")
        run_python(
            f"""
            from kernelflow.artifacts import update_progress_artifact
            update_progress_artifact({str(artifact_id)!r}, 80, description="from a child")
            """
        )
        row = only(key="shared")
        assert (float(row["data"]), row["description"]) == (80.0, "from a child")


class TestShown:
    def test_runs_show_lists_the_runs_artifacts_with_a_summary(self):
        ids = report()
        create_markdown_artifact("not this run's", key="other")
        result = CliRunner().invoke(main, ["runs", "show", ids["flow_run_id"]])
        assert result.exit_code == 0, result.output
        out = result.output
        assert "Artifacts (5)" in out
        lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ")}
        assert "# Sales" in lines["sales-report"] and "weekly" in lines["sales-report"]
        assert "2 rows, 2 columns" in lines["sales-table"] and "load-0" in lines["sales-table"]
        assert "100%" in lines["load-progress"] and "done" in lines["load-progress"]
        assert "[the data](https://example.com/data.csv)" in lines["data-link"]
        assert "other" not in lines

    def test_the_rest_payload_carries_the_artifacts(self):
        from kernelflow.extension.payloads import run_detail

        ids = report()
        body = json.loads(json.dumps(run_detail(ids["flow_run_id"])))
        by_key = {a["key"]: a for a in body["artifacts"]}
        assert set(by_key) == {"sales-report", "data-link", None, "sales-table", "load-progress"}
        assert by_key["load-progress"]["summary"] == "100%"
        assert by_key["sales-table"]["task_run_id"] == ids["task_run_id"]
        assert by_key["sales-report"]["summary"] == "# Sales"

    @pytest.mark.parametrize(
        ("kind", "data", "summary"),
        [
            ("markdown", "\n\n## Heading\nmore", "## Heading"),
            ("table", '{"a": [1, 2, 3], "b": [4, 5, 6]}', "3 rows, 2 columns"),
            ("table", '[{"a": 1}, {"b": 2}]', "2 rows, 2 columns"),
            ("table", "[[1, 2, 3]]", "1 row, 3 columns"),
            ("progress", "12.5", "12.5%"),
            ("markdown", None, ""),
        ],
    )
    def test_summaries(self, kind, data, summary):
        assert summarize(kind, data) == summary


def test_creating_artifacts_in_a_flow_loads_nothing_heavy(tmp_path):
    code = f"""
import os, sys, json
os.environ["KERNELFLOW_HOME"] = {str(tmp_path / "home")!r}
from kernelflow import flow, task
from kernelflow.artifacts import create_markdown_artifact, create_progress_artifact
from kernelflow.artifacts import update_progress_artifact, create_table_artifact
from kernelflow.events import emit_event

@task
def step():
    progress = create_progress_artifact(0)
    update_progress_artifact(progress, 100)
    create_table_artifact([{{"a": 1}}])
    emit_event("step.done", {{"prefect.resource.id": "step"}})

@flow
def pipeline():
    create_markdown_artifact("# hi")
    step()

pipeline()
heavy = ["duckdb", "pandas", "pyarrow", "ipywidgets", "papermill", "jupyter_server"]
print(json.dumps([m for m in heavy if m in sys.modules]))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
