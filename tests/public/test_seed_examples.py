"""The Prefect cheat sheet's examples, run on kernelflow with only the imports changed.

Each test holds one example of ``shared/seed`` (the document our users come
from) with ``prefect`` replaced by ``kernelflow`` in its imports. What the
examples fetch over the network is replaced by local functions that fail or
succeed on purpose, and long sleeps / retry delays are shortened (each place
says so). Every test asserts the output and final states the cheat sheet
shows: run loggers write Prefect's console format to stderr,
``HH:MM:SS.mmm | INFO    | Task run 'name-0' - message``.

This folder imports only kernelflow's public modules.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

import kernelflow
from kernelflow import allow_failure, flow, task
from kernelflow.futures import wait
from kernelflow.states import Completed, Failed
from kernelflow.tasks import task_input_hash
from kernelflow.testing.utilities import kernelflow_test_harness

LOG_LINE = re.compile(
    r"^(?P<time>\d{2}:\d{2}:\d{2}\.\d{3}) \| (?P<level>[A-Z]+ *) \| (?P<who>.+?) - (?P<msg>.*)$"
)
FLOW_RUN = r"Flow run '[a-z]+-[a-z]+'"
#: Prefect 3's line for a task's first retry after 0.01 s.
FIRST_RETRY_IN_10_MS = (
    r"Task run failed with exception: .* - Retry 1/\d will start 0.01 second\(s\) from now"
)


def log_records(err: str) -> list[tuple[str, str, str]]:
    """``(level, who, message)`` of every console log line in ``err``, checking the format."""
    records = []
    for line in err.splitlines():
        match = LOG_LINE.match(line)
        if match is None:
            continue
        assert len(match["level"]) == 7, f"level not padded to 7 as in Prefect: {line!r}"
        records.append((match["level"].strip(), match["who"], match["msg"]))
    return records


def assert_logged_in_order(err: str, expected: list[tuple[str, str, str]]) -> None:
    """Each ``(level, who-regex, message-regex)`` matches a log line, in this order."""
    records = log_records(err)
    position = 0
    for level, who, message in expected:
        for i in range(position, len(records)):
            got_level, got_who, got_msg = records[i]
            if got_level == level and re.fullmatch(who, got_who) and re.fullmatch(message, got_msg):
                position = i + 1
                break
        else:
            raise AssertionError(
                f"no {level} line {who} - {message} after line {position} in:\n{err}"
            )


def messages(err: str) -> list[str]:
    return [msg for _level, _who, msg in log_records(err)]


# --- Quick example -----------------------------------------------------------------
def fake_httpbin_json(url: str) -> list[dict]:
    """Stands in for ``httpx.get(url).json()``: records of which none is active."""
    return [{"id": 1, "active": False}, {"id": 2}]


def test_quick_example(capsys):
    @task
    def fetch_data(url: str) -> list[dict]:
        # was: import httpx; return httpx.get(url).json()
        return fake_httpbin_json(url)

    @task
    def process(records: list[dict]) -> list[dict]:
        return [r for r in records if r.get("active")]

    @flow(name="My Pipeline")
    def pipeline(url: str) -> list[dict]:
        raw = fetch_data(url)
        return process(raw)

    result = pipeline("https://httpbin.org/json")
    print(result)

    out, err = capsys.readouterr()
    assert out == "[]\n"
    assert_logged_in_order(
        err,
        [
            ("INFO", FLOW_RUN, r"Beginning flow run '[a-z]+-[a-z]+' for flow 'My Pipeline'"),
            ("INFO", "Task run 'fetch_data-0'", re.escape("Finished in state Completed()")),
            ("INFO", "Task run 'process-0'", re.escape("Finished in state Completed()")),
            ("INFO", FLOW_RUN, re.escape("Finished in state Completed()")),
        ],
    )


# --- Retries and timeouts --------------------------------------------------------
class DeterministicRandom:
    """Stands in for the ``random`` module: returns the given draws in order."""

    def __init__(self, *draws: float) -> None:
        self._draws = iter(draws)

    def random(self) -> float:
        return next(self._draws)


def test_retries_and_timeouts(capsys):
    # The first draw is < 0.5, so the first call fails and is retried; the second succeeds.
    random = DeterministicRandom(0.1, 0.9)

    @task(
        retries=3,
        retry_delay_seconds=0.01,  # shortened from 10 to keep the test fast
        timeout_seconds=30,
        log_prints=True,
    )
    def unreliable_api_call(endpoint: str) -> dict:
        # was: import httpx, random  (random is the deterministic stand-in above)
        if random.random() < 0.5:
            raise ConnectionError("Simulated network failure")
        print(f"Called {endpoint} successfully")
        return {"status": "ok"}

    @flow(
        retries=1,
        timeout_seconds=120,
        log_prints=True,
    )
    def robust_pipeline():
        result = unreliable_api_call("https://api.example.com/data")
        print(f"Result: {result}")

    robust_pipeline()

    out, err = capsys.readouterr()
    assert out == ""
    task_run = "Task run 'unreliable_api_call-0'"
    assert_logged_in_order(
        err,
        [
            (
                "INFO",
                task_run,
                FIRST_RETRY_IN_10_MS,
            ),
            ("INFO", task_run, re.escape("Called https://api.example.com/data successfully")),
            ("INFO", task_run, re.escape("Finished in state Completed()")),
            ("INFO", FLOW_RUN, re.escape("Result: {'status': 'ok'}")),
            ("INFO", FLOW_RUN, re.escape("Finished in state Completed()")),
        ],
    )
    assert sum(" - Retry " in m for m in messages(err)) == 1

    runs = kernelflow.sql(
        "SELECT state_name, run_count FROM task_runs WHERE task_name = 'unreliable_api_call'"
    )
    assert runs.to_dict("records") == [{"state_name": "Completed", "run_count": 2}]


# --- Caching -----------------------------------------------------------------------
def test_caching(capsys):
    import time

    @task(
        cache_key_fn=task_input_hash,
        cache_expiration=timedelta(hours=1),
        log_prints=True,
    )
    def expensive_query(sql: str) -> list[dict]:
        print(f"Running query: {sql}")
        time.sleep(0.02)  # simulate slow DB call (shortened from 2 s)
        return [{"result": 42}]

    @flow
    def pipeline():
        # First call — runs the query
        r1 = expensive_query("SELECT * FROM big_table")
        # Second call with same input — returns cached result instantly
        r2 = expensive_query("SELECT * FROM big_table")
        print(r1, r2)

    pipeline()

    out, err = capsys.readouterr()
    assert out == "[{'result': 42}] [{'result': 42}]\n"
    assert messages(err).count("Running query: SELECT * FROM big_table") == 1  # runs once
    assert_logged_in_order(
        err,
        [
            (
                "INFO",
                "Task run 'expensive_query-0'",
                re.escape("Running query: SELECT * FROM big_table"),
            ),
            ("INFO", "Task run 'expensive_query-0'", re.escape("Finished in state Completed()")),
            ("INFO", "Task run 'expensive_query-1'", r"Finished in state Cached\(.*\)"),
        ],
    )

    # task_input_hash keys on the source and the inputs only: a new flow run reuses it too.
    pipeline()
    out, err = capsys.readouterr()
    assert out == "[{'result': 42}] [{'result': 42}]\n"
    assert "Running query: SELECT * FROM big_table" not in messages(err)


# --- Parallel task submission ------------------------------------------------------
def test_parallel_task_submission(capsys):
    import time

    @task(log_prints=True)
    def process_item(item: int) -> int:
        time.sleep(0.05)  # shortened from 0.5 s
        return item**2

    @flow
    def parallel_pipeline(items: list[int]) -> list[int]:
        futures = [process_item.submit(item) for item in items]
        wait(futures)
        return [f.result() for f in futures]

    result = parallel_pipeline(list(range(10)))
    print(result)

    out, err = capsys.readouterr()
    assert out == "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n"
    finished = [who for _l, who, msg in log_records(err) if msg == "Finished in state Completed()"]
    assert sorted(finished[:-1]) == sorted(f"Task run 'process_item-{i}'" for i in range(10))
    assert re.fullmatch(FLOW_RUN, finished[-1])


# --- Subflows ----------------------------------------------------------------------
def test_subflows(capsys):
    @task
    def validate(data: list) -> bool:
        return len(data) > 0

    @flow(name="transform")
    def transform_flow(data: list) -> list:
        if validate(data):
            return [x * 2 for x in data]
        return []

    @flow(name="main")
    def main_flow():
        raw = [1, 2, 3, 4, 5]
        result = transform_flow(raw)  # sub-flow call
        print(f"Transformed: {result}")

    main_flow()

    out, err = capsys.readouterr()
    assert out == "Transformed: [2, 4, 6, 8, 10]\n"
    assert_logged_in_order(
        err,
        [
            ("INFO", FLOW_RUN, r"Beginning flow run '[a-z]+-[a-z]+' for flow 'main'"),
            # Logged by the parent flow run, as Prefect does.
            ("INFO", FLOW_RUN, r"Beginning subflow run '[a-z]+-[a-z]+' for flow 'transform'"),
        ],
    )

    # The sub-flow is a tracked unit with its own run id, linked to its parent.
    runs = kernelflow.sql(
        "SELECT id, flow_name, coalesce(parent_flow_run_id, '-') AS parent, state_name "
        "FROM flow_runs ORDER BY id"
    ).to_dict("records")
    assert [(r["flow_name"], r["state_name"]) for r in runs] == [
        ("main", "Completed"),
        ("transform", "Completed"),
    ]
    main, sub = runs
    assert main["parent"] == "-"
    assert sub["parent"] == main["id"]
    validate_run = kernelflow.sql("SELECT flow_run_id FROM task_runs WHERE task_name = 'validate'")
    assert validate_run["flow_run_id"].tolist() == [sub["id"]]


# --- Logging and state hooks ---------------------------------------------------------
def test_logging_and_state_hooks(capsys):
    from kernelflow.states import State  # noqa: F401 - the sheet's example imports it

    @task(log_prints=True)
    def my_task():
        print("task running")
        return 42

    def on_failure(flow, flow_run, state):
        print(f"Flow {flow.name} failed: {state.message}")

    def on_completion(flow, flow_run, state):
        print(f"Flow {flow.name} completed successfully")

    @flow(
        on_failure=[on_failure],
        on_completion=[on_completion],
        log_prints=True,
    )
    def instrumented_flow():
        result = my_task()
        print(f"Result: {result}")

    instrumented_flow()

    out, err = capsys.readouterr()
    assert_logged_in_order(
        err,
        [
            ("INFO", "Task run 'my_task-0'", "task running"),
            ("INFO", "Task run 'my_task-0'", re.escape("Finished in state Completed()")),
            ("INFO", FLOW_RUN, re.escape("Result: 42")),
            ("INFO", FLOW_RUN, re.escape("Finished in state Completed()")),
        ],
    )
    assert "Flow instrumented-flow completed successfully" in out + err
    assert "failed" not in out + err


def test_logging_and_state_hooks_on_failure(capsys):
    # The same hooks, with a task that fails: the on_failure hook runs instead.
    @task(log_prints=True)
    def my_task():
        print("task running")
        raise ValueError("disk full")

    def on_failure(flow, flow_run, state):
        print(f"Flow {flow.name} failed: {state.message}")

    def on_completion(flow, flow_run, state):
        print(f"Flow {flow.name} completed successfully")

    @flow(
        on_failure=[on_failure],
        on_completion=[on_completion],
        log_prints=True,
    )
    def instrumented_flow():
        result = my_task()
        print(f"Result: {result}")

    with pytest.raises(ValueError, match="disk full"):
        instrumented_flow()

    out, err = capsys.readouterr()
    assert (
        "Flow instrumented-flow failed: Flow run encountered an exception: ValueError: disk full"
        in out + err
    )
    assert "completed successfully" not in out + err
    assert_logged_in_order(
        err,
        [
            (
                "ERROR",
                "Task run 'my_task-0'",
                re.escape("Finished in state Failed(") + r".*ValueError: disk full.*",
            ),
            (
                "ERROR",
                FLOW_RUN,
                re.escape("Encountered exception during execution: ValueError(") + ".*",
            ),
            # Prefect logs a flow's final state at INFO, whatever it is.
            ("INFO", FLOW_RUN, re.escape("Finished in state Failed(") + r".*"),
        ],
    )


# --- Real-world recipe 1: parameterised ETL with retries and caching -----------------
#: What the fake source serves: scores 0..216, so 142 rows score >= 75 (the sheet's "142").
ITEMS = [{"id": i, "score": i} for i in range(217)]
CALLS: list[str] = []


class FakeResponse:
    """The part of an ``httpx.Response`` the recipe uses."""

    def __init__(self, url: str) -> None:
        self.url = url

    def raise_for_status(self) -> None:
        if "no-such-host" in self.url:
            raise ConnectionError(f"[Errno -2] Name or service not known: {self.url}")

    def json(self) -> list[dict]:
        return [dict(row) for row in ITEMS]


def fake_get(url: str, timeout: float = 10) -> FakeResponse:
    """Stands in for ``httpx.get``: the first call to a URL fails, as a flaky API would."""
    CALLS.append(url)
    if CALLS.count(url) == 1:
        raise ConnectionError("Simulated network failure")
    return FakeResponse(url)


# The recipe's code, at module level as in a user's my_flows.py (the testing patterns import
# it). retry_delay_seconds shortened from 10 to 0.01.
@task(
    retries=3,
    retry_delay_seconds=0.01,
    cache_key_fn=task_input_hash,
    cache_expiration=timedelta(hours=6),
)
def extract(source: str) -> list[dict]:
    # was: import httpx; r = httpx.get(source, timeout=10)
    r = fake_get(source, timeout=10)
    r.raise_for_status()
    return r.json()


@task
def transform(rows: list[dict], min_score: int) -> list[dict]:
    return [r for r in rows if r.get("score", 0) >= min_score]


@task(retries=2)
def load(rows: list[dict], dest: str) -> int:
    import json
    import pathlib

    pathlib.Path(dest).write_text(json.dumps(rows, indent=2))
    return len(rows)


@flow(name="etl", log_prints=True)
def etl(source: str, dest: str = "out.json", min_score: int = 50) -> int:
    raw = extract(source)
    cleaned = transform(raw, min_score)
    return load(cleaned, dest)


def test_recipe_1_parameterised_etl(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recipe writes out.json to the working directory
    CALLS.clear()

    print(etl("https://api.example.com/items", min_score=75))

    out, err = capsys.readouterr()
    assert out == "142\n"
    assert_logged_in_order(
        err,
        [
            (
                "INFO",
                "Task run 'extract-0'",
                FIRST_RETRY_IN_10_MS,
            ),
            ("INFO", "Task run 'extract-0'", re.escape("Finished in state Completed()")),
            ("INFO", "Task run 'transform-0'", re.escape("Finished in state Completed()")),
            ("INFO", "Task run 'load-0'", re.escape("Finished in state Completed()")),
            ("INFO", FLOW_RUN, re.escape("Finished in state Completed()")),
        ],
    )
    written = json.loads((tmp_path / "out.json").read_text())
    assert len(written) == 142 and min(r["score"] for r in written) == 75

    # Within cache_expiration, a second run reuses extract's result: no request is made.
    calls_before = len(CALLS)
    assert etl("https://api.example.com/items", min_score=200) == 17
    assert len(CALLS) == calls_before
    out, err = capsys.readouterr()
    assert_logged_in_order(
        err,
        [
            ("INFO", "Task run 'extract-0'", r"Finished in state Cached\(.*\)"),
        ],
    )


# --- Real-world recipe 2: conditional branching with allow_failure -------------------
def test_recipe_2_allow_failure(capsys):
    @task
    def primary_source() -> dict:
        raise RuntimeError("primary down")

    @task
    def fallback_source() -> dict:
        return {"src": "fallback", "rows": [1, 2, 3]}

    @task
    def merge(primary: dict, fallback: dict) -> dict:
        return primary if primary else fallback

    @flow(log_prints=True)
    def resilient_fetch():
        p_future = primary_source.submit()
        f_future = fallback_source.submit()
        result = merge(allow_failure(p_future), f_future)
        print(result)

    resilient_fetch()

    # Documented difference: Prefect 3.9 hands merge the exception (truthy) and so returns it;
    # kernelflow hands it None, so the recipe falls back as the cheat sheet shows.
    out, err = capsys.readouterr()
    assert out == ""
    assert_logged_in_order(
        err,
        [
            ("INFO", "Task run 'merge-0'", re.escape("Finished in state Completed()")),
            ("INFO", FLOW_RUN, re.escape("{'src': 'fallback', 'rows': [1, 2, 3]}")),
            ("INFO", FLOW_RUN, re.escape("Finished in state Completed()")),
        ],
    )
    # The two submitted tasks run side by side, so their lines may come in either order.
    assert_logged_in_order(
        err,
        [
            (
                "ERROR",
                "Task run 'primary_source-0'",
                re.escape("Finished in state Failed(") + ".*RuntimeError: primary down.*",
            ),
        ],
    )
    assert_logged_in_order(
        err,
        [
            ("INFO", "Task run 'fallback_source-0'", re.escape("Finished in state Completed()")),
        ],
    )


# --- Real-world recipe 4: map fan-out with .map() -----------------------------------
def test_recipe_4_map_fan_out(capsys):
    @task
    def process(item: int) -> int:
        return item * item

    @flow
    def map_pipeline(items: list[int]) -> list[int]:
        futures = process.map(items)
        return [f.result() for f in futures]

    print(map_pipeline(list(range(10))))

    out, err = capsys.readouterr()
    assert out == "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n"
    finished = {who for _l, who, msg in log_records(err) if msg == "Finished in state Completed()"}
    assert {f"Task run 'process-{i}'" for i in range(10)} <= finished


# --- Real-world recipe 5: recovering from a failed state ----------------------------
def test_recipe_5_recovering_from_a_failed_state(capsys):
    @task
    def maybe_fail(x: int):
        if x < 0:
            return Failed(message=f"negative: {x}")
        return Completed(message=f"ok: {x}", data=x * 2)

    @flow(log_prints=True)
    def safe_flow(values: list[int]):
        for v in values:
            state = maybe_fail(v, return_state=True)
            if state.is_failed():
                print(f"SKIPPED: {state.message}")
                continue
            print(f"OK: {state.result()}")

    safe_flow([1, -2, 3, -4])

    out, err = capsys.readouterr()
    assert out == ""
    printed = [msg for _l, who, msg in log_records(err) if who.startswith("Flow run")]
    assert [m for m in printed if m.startswith(("OK", "SKIPPED"))] == [
        "OK: 2",
        "SKIPPED: negative: -2",
        "OK: 6",
        "SKIPPED: negative: -4",
    ]
    # The returned states are the task runs' states; the flow itself completes.
    assert_logged_in_order(
        err,
        [
            ("ERROR", "Task run 'maybe_fail-1'", r"Finished in state Failed\(.*negative: -2.*\)"),
            ("INFO", FLOW_RUN, re.escape("Finished in state Completed()")),
        ],
    )
    states = kernelflow.sql(
        "SELECT name, state_name, state_message FROM task_runs ORDER BY name"
    ).to_dict("records")
    assert states == [
        {"name": "maybe_fail-0", "state_name": "Completed", "state_message": "ok: 1"},
        {"name": "maybe_fail-1", "state_name": "Failed", "state_message": "negative: -2"},
        {"name": "maybe_fail-2", "state_name": "Completed", "state_message": "ok: 3"},
        {"name": "maybe_fail-3", "state_name": "Failed", "state_message": "negative: -4"},
    ]


# --- Performance tuning: batching ------------------------------------------------------
def test_performance_tuning_batching(capsys):
    # BAD — high overhead, one task per row
    @task
    def process_row(row):
        return row * 2

    @flow
    def slow(rows):
        return [process_row(r) for r in rows]  # 10,000 tasks × 80ms overhead = 800s  # noqa: RUF003

    # GOOD — batch into chunks of 100
    from itertools import islice

    @task
    def process_batch(batch):
        return [r * 2 for r in batch]

    @flow
    def fast(rows):
        futures = []
        it = iter(rows)
        while batch := list(islice(it, 100)):
            futures.append(process_batch.submit(batch))
        return [r for f in futures for r in f.result()]

    rows = list(range(10_000))
    assert fast(rows) == [r * 2 for r in rows]
    assert slow(rows[:1_000]) == [r * 2 for r in rows[:1_000]]  # 1,000 rows keep the test short

    counts = kernelflow.sql(
        "SELECT task_name, count(*) AS n, count(*) FILTER (WHERE state_name = 'Completed') AS ok "
        "FROM task_runs GROUP BY task_name ORDER BY task_name"
    ).to_dict("records")
    assert counts == [
        {"task_name": "process_batch", "n": 100, "ok": 100},
        {"task_name": "process_row", "n": 1_000, "ok": 1_000},
    ]


# --- Testing patterns ----------------------------------------------------------------
# Harness sets up a fresh kernelflow store for the test session (no API server needed).
@pytest.fixture(autouse=True, scope="session")
def prefect_db():
    with kernelflow_test_harness():
        yield


# 1. Pure-function task — call without the @task wrapper
@pytest.mark.no_temporary_store
def test_transform_filters_low_scores():
    result = transform.fn([{"score": 10}, {"score": 80}], min_score=50)
    assert result == [{"score": 80}]


# 2. Flow run end-to-end against the test store
@pytest.mark.no_temporary_store
def test_etl_loads_results(tmp_path):
    CALLS.clear()
    out = tmp_path / "out.json"
    n = etl("https://httpbin.org/get", dest=str(out), min_score=0)
    # The fake source serves scores 0..216; min_score=0 keeps every row, and load writes them.
    assert n == len(ITEMS) == 217
    assert json.loads(out.read_text()) == ITEMS
    assert CALLS == ["https://httpbin.org/get"] * 2  # the first request failed, one retry


# 3. Assert state from a flow run
@pytest.mark.no_temporary_store
def test_etl_handles_bad_url():
    CALLS.clear()
    state = etl("https://no-such-host.example", return_state=True)
    assert state.is_failed()
    assert "no-such-host.example" in state.message


@pytest.mark.no_temporary_store
def test_harness_gives_a_real_store():
    # Not in the sheet: the harness's store records the runs, queryable with SQL.
    CALLS.clear()
    state = etl("https://no-such-host.example/harness", return_state=True)
    runs = kernelflow.sql(
        "SELECT state_type FROM flow_runs WHERE parameters->>'source' LIKE '%/harness%'"
    )
    assert runs["state_type"].tolist() == [state.type.value] == ["FAILED"]
