"""``kernelflow.events.emit_event``: Prefect's ``prefect.events.emit_event``, recorded in the
store's ``events`` table with the run that emitted it."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow.events import Event, RelatedResource, Resource, emit_event


def events() -> list[dict]:
    frame = kernelflow.sql(
        "SELECT id, event, epoch(occurred) AS occurred, resource_id, resource, related, "
        "payload, flow_run_id, task_run_id FROM events ORDER BY occurred, id"
    )
    out = []
    for row in frame.to_dict("records"):
        for column in ("resource", "related", "payload"):
            row[column] = json.loads(row[column])
        out.append({k: (None if v is None or v != v else v) for k, v in row.items()})
    return out


class TestEmit:
    def test_returns_the_event_and_records_it(self):
        before = dt.datetime.now(dt.timezone.utc)
        event = emit_event(
            event="warehouse.table.refreshed",
            resource={"prefect.resource.id": "warehouse.table.sales", "team": "data"},
            payload={"rows": 1200, "columns": ["a", "b"]},
        )
        assert isinstance(event, Event)
        assert event.event == "warehouse.table.refreshed"
        assert isinstance(event.resource, Resource) and event.resource.id == "warehouse.table.sales"
        assert event.payload == {"rows": 1200, "columns": ["a", "b"]}
        assert isinstance(event.id, uuid.UUID) and event.related == []
        assert before <= event.occurred <= dt.datetime.now(dt.timezone.utc)

        (row,) = events()
        assert row["id"] == str(event.id)
        assert (row["event"], row["resource_id"]) == (
            "warehouse.table.refreshed",
            "warehouse.table.sales",
        )
        assert row["resource"] == {"prefect.resource.id": "warehouse.table.sales", "team": "data"}
        assert row["payload"] == {"rows": 1200, "columns": ["a", "b"]}
        assert row["related"] == [] and row["flow_run_id"] is None and row["task_run_id"] is None
        assert row["occurred"] == pytest.approx(event.occurred.timestamp(), abs=1e-3)

    def test_inside_runs_the_runs_are_related_and_recorded(self):
        @task
        def publish() -> tuple[Event | None, str]:
            return emit_event("model.published", {"prefect.resource.id": "model.churn"}), (
                kernelflow.runtime.task_run.id
            )

        @flow(flow_run_name="training")
        def train() -> tuple:
            in_flow = emit_event(
                "model.trained",
                {"prefect.resource.id": "model.churn"},
                related=[{"prefect.resource.id": "dataset.q3", "prefect.resource.role": "data"}],
            )
            return in_flow, publish(), kernelflow.runtime.flow_run.id

        in_flow, (in_task, task_run_id), flow_run_id = train()
        assert [r.role for r in in_flow.related] == ["data", "flow-run"]
        assert in_flow.related[1].id == f"prefect.flow-run.{flow_run_id}"
        assert in_flow.related[1].name == "training"
        assert [r.id for r in in_task.related] == [
            f"prefect.flow-run.{flow_run_id}",
            f"prefect.task-run.{task_run_id}",
        ]
        trained, published = events()
        assert (trained["flow_run_id"], trained["task_run_id"]) == (flow_run_id, None)
        assert (published["flow_run_id"], published["task_run_id"]) == (flow_run_id, task_run_id)
        assert [r["prefect.resource.role"] for r in trained["related"]] == ["data", "flow-run"]
        assert published["related"][1] == {
            "prefect.resource.id": f"prefect.task-run.{task_run_id}",
            "prefect.resource.role": "task-run",
            "prefect.resource.name": "publish-0",
        }

    def test_given_id_occurred_and_follows(self):
        first = emit_event("a.started", {"prefect.resource.id": "job.1"})
        given = uuid.uuid4()
        naive = dt.datetime(2030, 1, 2, 3, 4, 5)
        later = emit_event(
            "a.finished",
            {"prefect.resource.id": "job.1"},
            occurred=naive,
            id=given,
            follows=first,
        )
        assert later.id == given
        assert later.occurred == naive.replace(tzinfo=dt.timezone.utc), "naive means UTC"
        assert later.follows is None, "more than 5 minutes after: not linked, as in Prefect"
        close = emit_event("a.checked", {"prefect.resource.id": "job.1"}, follows=first)
        assert close.follows == first.id
        assert [e["event"] for e in events()] == ["a.started", "a.checked", "a.finished"]

    def test_an_id_sent_twice_is_recorded_once(self):
        given = uuid.uuid4()
        emit_event("dup", {"prefect.resource.id": "r"}, id=given)
        assert len(events()) == 1
        emit_event("dup", {"prefect.resource.id": "r"}, id=given)
        emit_event("dup", {"prefect.resource.id": "r"}, id=given)
        assert [e["id"] for e in events()] == [str(given)]

    def test_events_from_another_process(self, run_python):
        run_python(
            """
            from kernelflow.events import emit_event
            emit_event("child.done", {"prefect.resource.id": "child"}, payload={"ok": True})
            """
        )
        (row,) = events()
        assert (row["event"], row["payload"]) == ("child.done", {"ok": True})


class TestMalformed:
    """As in Prefect, a malformed event is logged and dropped: emit_event returns None."""

    @pytest.mark.parametrize(
        ("kwargs", "reason"),
        [
            ({"resource": {"name": "x"}}, "prefect.resource.id"),
            ({"resource": {"prefect.resource.id": ""}}, "prefect.resource.id"),
            ({"resource": {"prefect.resource.id": 5}}, "strings"),
            (
                {
                    "resource": {"prefect.resource.id": "r"},
                    "related": [{"prefect.resource.id": "q"}],
                },
                "prefect.resource.role",
            ),
            ({"resource": {"prefect.resource.id": "r"}, "payload": {"x": object()}}, "JSON"),
            ({"resource": {"prefect.resource.id": "r"}, "occurred": "yesterday"}, "datetime"),
        ],
    )
    def test_returns_none_and_logs_why(self, caplog, kwargs, reason):
        assert emit_event("broken", **kwargs) is None
        (message,) = [r.getMessage() for r in caplog.records if r.name == "kernelflow.events"]
        assert "'broken' not recorded" in message and reason in message
        assert events() == []

    def test_resources_check_their_labels(self):
        with pytest.raises(ValueError, match=r"prefect\.resource\.role"):
            RelatedResource({"prefect.resource.id": "x"})
        related = RelatedResource({"prefect.resource.id": "x", "prefect.resource.role": "r"})
        assert (related.id, related.role, related.name) == ("x", "r", None)
