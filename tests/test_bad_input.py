"""Bad input gets one clear line of our own error class, and nothing recorded is lost.

Issue 2, "Bad input": retries < 0, a non-numeric delay, a timeout <= 0, an
unhashable cache input, a result that cannot be serialized, a store
directory that cannot be written, a locked or corrupt database file, a newer
schema than this version knows.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

import kernelflow
from kernelflow import flow, settings, task
from kernelflow.cache_policies import INPUTS
from kernelflow.errors import (
    CachePolicyError,
    ConfigurationError,
    HashingError,
    KernelflowError,
    ResultSerializationError,
    SchemaTooNewError,
    StoreCorruptError,
    StoreLockedError,
    StoreNotWritableError,
)
from kernelflow.store import compact


def assert_one_line(exc: BaseException, cls: type[KernelflowError], *parts: str) -> None:
    """``exc`` is ours, of ``cls``, one line naming each of ``parts``, shown as one line."""
    assert isinstance(exc, cls), f"{type(exc).__name__}: {exc}"
    text = str(exc)
    assert "\n" not in text, text
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"
    # In a notebook, IPython renders our errors without a traceback.
    assert exc._render_traceback_() == [f"{type(exc).__name__}: {text}"]


def plain():
    return 1


# --- options --------------------------------------------------------------------------
@pytest.mark.parametrize("decorator", [task, flow])
@pytest.mark.parametrize(
    ("options", "parts"),
    [
        ({"retries": -1}, ["retries", ">= 0", "-1"]),
        ({"retries": -2}, ["retries", ">= 0", "-2"]),
        ({"retries": 1.5}, ["retries", "whole number", "1.5"]),
        ({"retries": "3"}, ["retries", "whole number", "'3'"]),
        ({"retries": 2, "retry_delay_seconds": "ten"}, ["retry_delay_seconds", "number", "'ten'"]),
        ({"retries": 2, "retry_delay_seconds": object()}, ["retry_delay_seconds", "object"]),
        ({"timeout_seconds": 0}, ["timeout_seconds", "> 0", "0"]),
        ({"timeout_seconds": -3}, ["timeout_seconds", "> 0", "-3"]),
        ({"timeout_seconds": "5"}, ["timeout_seconds", "number of seconds", "'5'"]),
    ],
)
def test_bad_options(decorator, options, parts):
    with pytest.raises(ConfigurationError) as info:
        decorator(plain, **options)
    assert_one_line(info.value, ConfigurationError, *parts, "plain")


@pytest.mark.parametrize(
    ("options", "cls", "parts"),
    [
        (
            {"retries": 2, "retry_delay_seconds": [1, "x"]},
            ConfigurationError,
            ["retry_delay_seconds", "'x'"],
        ),
        ({"retry_jitter_factor": -1}, ConfigurationError, ["retry_jitter_factor", "-1"]),
        ({"cache_expiration": "1h"}, ConfigurationError, ["cache_expiration", "'1h'"]),
        ({"cache_policy": "INPUTS"}, CachePolicyError, ["cache_policy", "INPUTS + TASK_SOURCE"]),
        ({"cache_key_fn": 3}, CachePolicyError, ["cache_key_fn", "callable"]),
        ({"on_completion": [1]}, ConfigurationError, ["on_completion", "callable"]),
        (
            {"cache_policy": INPUTS, "persist_result": False},
            CachePolicyError,
            ["persist_result=False"],
        ),
    ],
)
def test_bad_task_options(options, cls, parts):
    with pytest.raises(cls) as info:
        task(plain, **options)
    assert_one_line(info.value, cls, *parts)


def test_configuration_errors_are_value_errors():
    # Code that already catches ValueError around its configuration keeps working.
    with pytest.raises(ValueError):
        task(plain, retries=-1)


# --- cache inputs and results -------------------------------------------------------------
def test_unhashable_cache_input_names_the_argument_and_the_way_out():
    @task(cache_policy=INPUTS)
    def query(conn, sql):
        return sql

    @flow
    def f():
        return query(threading.Lock(), "SELECT 1")

    with pytest.raises(HashingError) as info:
        f()
    assert_one_line(info.value, HashingError, "'conn'", "INPUTS - 'conn'", "cache_key_fn")
    state = f(return_state=True)
    assert state.is_failed()
    task_row = kernelflow.sql("SELECT state_name, state_message FROM task_runs LIMIT 1")
    assert task_row["state_name"].tolist() == ["Failed"]
    assert "'conn'" in task_row["state_message"][0]


def test_unhashable_value_inside_a_container():
    @task(cache_policy=INPUTS)
    def t(options):
        return 1

    with pytest.raises(HashingError) as info:
        t({"retry": True, "lock": threading.Lock()})
    assert_one_line(info.value, HashingError, "'options'")


@pytest.mark.parametrize("options", [{"persist_result": True}, {"cache_policy": INPUTS}])
def test_unserializable_result_names_the_task(options):
    @task(**options)
    def make_lock(x):
        return threading.Lock()

    @flow
    def f():
        return make_lock(1)

    with pytest.raises(ResultSerializationError) as info:
        f()
    assert_one_line(info.value, ResultSerializationError, "'make_lock'", "persist_result=False")


def test_unpersisted_result_may_be_anything():
    @task(persist_result=False)
    def make_lock():
        return threading.Lock()

    assert make_lock() is not None


# --- the store ---------------------------------------------------------------------------
@contextlib.contextmanager
def store_home(path: Path) -> Iterator[None]:
    previous = settings.use_home(path)
    try:
        yield
    finally:
        settings.use_home(previous)


@flow
def recorded(x):
    return x


def recorded_values() -> list[int]:
    """The runs of ``recorded`` in the store, once every journal is folded in."""
    # Fold explicitly: for a while after a failed fold, queries skip folding (so a held
    # database does not make every query wait), and the point here is what is kept.
    compact()
    rows = kernelflow.sql("SELECT parameters->>'x' AS x FROM flow_runs ORDER BY x")
    return [int(x) for x in rows["x"]]


def test_store_directory_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    home = blocker / "store"
    with store_home(home), pytest.raises(StoreNotWritableError) as info:
        recorded(1)
    assert_one_line(info.value, StoreNotWritableError, str(home), "KERNELFLOW_HOME")


def test_store_directory_that_cannot_be_created_when_querying(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with store_home(blocker / "store"), pytest.raises(StoreNotWritableError) as info:
        kernelflow.sql("SELECT 1")
    assert_one_line(info.value, StoreNotWritableError, "KERNELFLOW_HOME")


@pytest.fixture
def short_lock_wait(monkeypatch):
    monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "0.3")


def _hold(code: str) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_database_locked_by_another_program(store, short_lock_wait, no_background_fold):
    recorded(1)
    assert recorded_values() == [1]
    holder = _hold(
        "import duckdb, time\n"
        f"con = duckdb.connect({str(store.paths.database)!r})\n"
        "print('held', flush=True)\ntime.sleep(60)"
    )
    try:
        recorded(2)  # runs do not need the database: still recorded, in the journal
        with pytest.raises(StoreLockedError) as info:
            kernelflow.sql("SELECT count(*) FROM flow_runs")
        assert_one_line(
            info.value,
            StoreLockedError,
            str(store.paths.database),
            f"PID {holder.pid}",
            "nothing is lost",
        )
    finally:
        holder.kill()
        holder.wait()
    assert recorded_values() == [1, 2]


def test_store_lock_held_by_a_hung_kernelflow_process(store, short_lock_wait, no_background_fold):
    recorded(1)
    store.paths.lock.touch()
    holder = _hold(
        "import fcntl, os, time\n"
        f"fd = os.open({str(store.paths.lock)!r}, os.O_RDWR)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.pwrite(fd, str(os.getpid()).encode(), 0)\n"
        "print('held', flush=True)\ntime.sleep(60)"
    )
    try:
        with pytest.raises(StoreLockedError) as info:
            kernelflow.sql("SELECT count(*) FROM flow_runs")
        assert_one_line(info.value, StoreLockedError, f"PID {holder.pid}", "end it")
    finally:
        holder.kill()
        holder.wait()
    assert recorded_values() == [1]


def test_corrupt_database_file(store):
    recorded(1)
    assert recorded_values() == [1]
    database = store.paths.database
    database.write_bytes(b"this is not a duckdb file" * 1000)
    recorded(2)
    with pytest.raises(StoreCorruptError) as info:
        kernelflow.sql("SELECT count(*) FROM flow_runs")
    assert_one_line(info.value, StoreCorruptError, str(database), "run 'kernelflow store repair'")
    # Doing what the message says brings the runs back from this process's journal.
    from kernelflow.store.repair import repair

    assert repair().repaired
    assert recorded_values() == [1, 2]


def test_newer_schema(store):
    from kernelflow.store.schema import SCHEMA_VERSION

    recorded(1)
    assert recorded_values() == [1]
    with duckdb.connect(str(store.paths.database)) as con:
        con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 1])
    recorded(2)
    with pytest.raises(SchemaTooNewError) as info:
        kernelflow.sql("SELECT count(*) FROM flow_runs")
    assert_one_line(
        info.value,
        SchemaTooNewError,
        str(store.paths.database),
        f"version {SCHEMA_VERSION + 1}",
        "upgrade kernelflow",
    )
    # Nothing was written into the newer database, and the events wait in the journal.
    with duckdb.connect(str(store.paths.database), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM flow_runs").fetchone()[0] == 1
    journal_text = "".join(p.read_text() for p in store.paths.journal.glob("*.jsonl"))
    assert journal_text.count('"ev":"flow_run"') == 2


def test_bad_lock_timeout_setting(monkeypatch):
    monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError) as info:
        kernelflow.sql("SELECT 1")
    assert_one_line(info.value, ConfigurationError, "KERNELFLOW_LOCK_TIMEOUT", "'soon'")
