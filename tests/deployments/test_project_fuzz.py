"""Fuzzing ``kernelflow.yaml`` (hypothesis): random YAML documents, valid files with one key
mutated, and files that are not YAML at all.

Whatever the file holds: its deployments are applied, or one line names the file (and the
entry) and says what to change. A refused file changes nothing: the deployments and the runs
recorded before are exactly as they were, even when its first entries were fine.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernelflow import flow
from kernelflow.cli import main
from kernelflow.deployments import deploy, list_deployments
from kernelflow.deployments.execution import create_run
from kernelflow.deployments.models import DEPLOYMENT_OPTIONS
from kernelflow.deployments.project import apply_project
from kernelflow.errors import ConfigurationError
from kernelflow.extension.deployment_payloads import deployments_overview

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: The keys of an entry (deploy's arguments), and some that are not. Not ``dask``:
#: checking an address waits for a cluster to answer.
KEYS = [
    "name",
    *(option for option in DEPLOYMENT_OPTIONS if option != "dask"),
    "update",
    "colour",
    "Name",
]
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.dates(),
    st.sampled_from(
        [
            "report.ipynb",
            "missing.ipynb",
            "../report.ipynb",
            "keep",
            "fuzz",
            "0 6 * * *",
            "61 * * * *",
            "* * *",
            "@daily",
            "UTC",
            "Europe/Berlin",
            "Mars/Olympus_Mons",
            "5m",
            "1h30m",
            "-1",
            "nan",
            "skip",
            "all",
            "sometimes",
            "https://example.invalid/hook",
            "ftp://x",
            "kernelflow-deploy-test",
        ]
    ),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(KEYS), TEXT, st.integers()), children, max_size=4
        ),
    ),
    max_leaves=12,
)


#: Values each key accepts, so that mutated files are applied too, not only refused.
VALID: dict[str, list[Any]] = {
    "cron": ["0 6 * * *", "*/5 * * * 1-5"],
    "interval": [30, 0.5, "5m", "1h30m"],
    "timezone": ["UTC", "Europe/Berlin", "America/New_York"],
    "parameters": [{"n": 3}, {"x": 1.5, "items": [1, 2]}, {}],
    "timeout": [60, "10m"],
    "cell_timeout": [5, "1h"],
    "retries": [0, 3],
    "retry_delay": [0, "30s"],
    "catchup": ["skip", "latest", "all"],
    "max_catchup": [0, 5],
    "limit": [1, 3],
    "grace": [0, 120],
    "kernel": ["kernelflow-deploy-test"],
    "tags": [["a", "b"], "x, y"],
    "paused": [True, False],
    "after": ["keep"],
    "notify": [["https://example.invalid/hook"], "https://example.invalid/other"],
}


def dump(document: Any) -> str:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


@flow(name="fuzz-baseline")
def baseline_flow() -> int:
    return 1


@pytest.fixture
def project(make_notebook, tmp_path: Path, store: Any) -> dict[str, Any]:
    """A notebook, a deployment ``keep`` with runs, a flow run, and where the file goes."""
    nb = make_notebook(
        "report", "print(n, x, items)", parameters="n: int = 1\nx = 0.5\nitems = [1]"
    )
    keep = deploy(nb, "keep", interval=3600)
    now = time.time()
    for i in range(2):
        create_run(keep, now + i, {})
    assert baseline_flow() == 1
    return {"notebook": nb, "file": tmp_path / "kernelflow.yaml", "store": store}


def recorded(store: Any) -> tuple[list[dict], list[dict]]:
    """The deployments (their whole stored definitions) and the runs, as they are now."""
    deployments = store.sql("SELECT name, definition FROM deployments ORDER BY name")
    runs = store.sql("SELECT id, state_name, deployment_id FROM flow_runs ORDER BY id")
    return deployments.to_dict("records"), runs.to_dict("records")


def apply_or_refuse(project: dict[str, Any], text: str | bytes) -> list[tuple[str, str]] | None:
    """Write and apply the file; a refusal must be one line naming the file and change nothing."""
    path: Path = project["file"]
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    before = recorded(project["store"])
    try:
        applied = apply_project(path)
    except ConfigurationError as exc:
        message = str(exc)
        assert message.strip() and len(message.splitlines()) == 1, repr(message)
        assert str(path) in message, message
        assert recorded(project["store"]) == before, f"a refused file changed the store: {message}"
        return None
    deployments, runs = recorded(project["store"])
    names = {name for name, _status in applied}
    kept = [d for d in before[0] if d["name"] not in names]
    assert [d for d in deployments if d["name"] not in names] == kept
    assert {r["id"] for r in runs} >= {r["id"] for r in before[1]}, "a run was lost"
    listing_holds()
    return applied


def listing_holds() -> None:
    """Every deployment lists and describes itself; the REST overview answers."""
    listed = list_deployments()
    assert all(deployment.describe_schedule() for deployment in listed)
    overview = deployments_overview()
    assert {d["name"] for d in overview["deployments"]} == {d.name for d in listed}


def valid_entry(**changes: Any) -> dict[str, Any]:
    entry = {"name": "fuzz", "notebook": "report.ipynb", "interval": 60}
    entry.update(changes)
    return entry


@FUZZ
@given(document=st.one_of(TREES, st.fixed_dictionaries({"deployments": TREES})))
def test_random_documents(project, document):
    apply_or_refuse(project, dump(document))


@FUZZ
@given(
    name=st.sampled_from(["fuzz", "keep"]),
    change=st.sampled_from([k for k in KEYS if k != "name"]).flatmap(
        lambda key: st.tuples(st.just(key), st.one_of(st.sampled_from(VALID.get(key, [1])), TREES))
    ),
    drop=st.sampled_from([None, None, None, None, "name", "notebook"]),
    first_ok=st.booleans(),
)
def test_valid_files_with_one_key_mutated(project, name, change, drop, first_ok):
    key, value = change
    entry = valid_entry(name=name, **{key: value})
    if key == "cron":
        entry.pop("interval")  # one schedule: both is refused, rightly
    if drop is not None:
        entry.pop(drop)
    entries = [entry]
    if first_ok:  # a good entry first: refusing the second must not have applied it
        entries.insert(0, {"name": "good", "notebook": "report.ipynb", "cron": "0 6 * * *"})
    applied = apply_or_refuse(project, dump({"deployments": entries}))
    if applied is not None:
        assert {n for n, _s in applied} == {e["name"] for e in entries}


BROKEN = st.sampled_from(list(":-[]{}'\"\t\n #&*!|>%@`,?\\\x00\x0c\u2028"))


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=200), st.one_of(BROKEN, TEXT)), max_size=4
    ),
    cut=st.integers(min_value=0, max_value=200),
)
def test_broken_yaml_text(project, edits, cut):
    text = dump({"deployments": [valid_entry(name="keep", interval="2h", retries=1)]})
    for position, inserted in edits:
        position %= len(text) + 1
        text = text[:position] + inserted + text[position:]
    text = text[: len(text) - cut % 10]  # sometimes cut short
    apply_or_refuse(project, text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (b"deployments:\n  - name: \xff\xfe\n", "is not UTF-8 text"),
        ("[" * 600 + "]" * 600, "nested too deeply"),
        ("deployments:\n  - name: [1]\n    notebook: report.ipynb\n", "Deployment name [1]"),
        ("deployments:\n  - name: 7\n    notebook: report.ipynb\n", "Deployment name 7"),
        (dump({"deployments": [valid_entry(after=[1])]}), "'after:' must be a deployment's"),
        (dump({"deployments": [valid_entry(**{"1": 2}), {1: 2}]}), "unknown keys ['1']"),
        ("deployments:\n  - {name: fuzz, notebook: report.ipynb, 1: x, b: y}\n", "['1', 'b']"),
        (dump({"deployments": [valid_entry(notebook="a\x00b")]}), "cannot be a notebook path"),
        (dump({"deployments": [valid_entry(notebook="a" * 5000)]}), "cannot be read"),
        (dump({"deployments": [valid_entry(notebook=["x"])]}), "'notebook:' must be a path"),
        (dump({"deployments": [valid_entry(), valid_entry()]}), "'fuzz' of"),
        (dump({"deployments": [valid_entry(interval=math.nan)]}), "--interval must be"),
        (dump({"deployments": [valid_entry(timezone="Mars/Olympus")]}), "Mars/Olympus"),
        (dump({"deployments": [valid_entry(name="keep", interval=None, cron="61 * * *")]}), "61"),
        (dump({"deployments": [valid_entry(notebook="missing.ipynb")]}), "does not exist"),
    ],
)
def test_bad_files_are_one_line_naming_the_file(project, text, fragment):
    assert apply_or_refuse(project, text) is None
    with pytest.raises(ConfigurationError) as caught:
        apply_project(project["file"])
    assert fragment in str(caught.value)


def test_a_bad_entry_refuses_the_whole_file(project):
    store = project["store"]
    entries = [
        valid_entry(name="keep", interval=120),  # would change keep
        valid_entry(name="new", after="keep"),  # would create new
        valid_entry(name="bad", retries=-1),
    ]
    before = recorded(store)
    with pytest.raises(ConfigurationError, match=r"^Entry 'bad' of .*kernelflow.yaml: --retries"):
        project["file"].write_text(dump({"deployments": entries}))
        apply_project(project["file"])
    assert recorded(store) == before
    # Fixed, the same file applies in order, `after` targets first.
    entries[2]["retries"] = 1
    project["file"].write_text(dump({"deployments": entries}))
    assert apply_project(project["file"]) == [
        ("keep", "updated"),
        ("new", "created"),
        ("bad", "created"),
    ]
    assert {d.name: d.interval for d in list_deployments()} == {
        "bad": 60.0,
        "keep": 120.0,
        "new": 60.0,
    }
    assert recorded(store)[1] == before[1]  # the runs recorded before are all there


def test_the_deploy_all_command_says_one_line(project):
    project["file"].write_text(dump({"deployments": [valid_entry(name="keep", retries="x")]}))
    before = recorded(project["store"])
    result = CliRunner().invoke(main, ["deploy", "--all", "--file", str(project["file"])])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith("Error: Entry 'keep' of ") and "--retries must be" in lines[0]
    assert recorded(project["store"]) == before
