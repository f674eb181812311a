"""Fault injection on the store: kills mid-append and mid-fold, and a full disk.

- SIGKILL at seeded random points (property test over many seeds): several
  writer processes run real flows and tasks while a compactor process folds
  over and over; writers are killed from outside or kill themselves in the
  middle of a journal append (leaving a torn line), and the compactor is
  killed at a random moment or between the steps of a fold. A later fold,
  by a process that took part in nothing, must hold every acknowledged event
  exactly once, nothing twice, and the killed writers' unfinished runs Crashed.
- A write that fails for lack of space (``RLIMIT_FSIZE`` on the writer, the
  same errno family as a full disk or quota) gives one clear
  :class:`~kernelflow.errors.StoreFullError`, and every event recorded before
  it stays whole and importable.

A foreign program holding the database file open is in ``test_store_db.py``
(``TestLocked``). The child processes are in ``fault_workers.py``.

Reproducing a failure: each seed is its own test id (``-k "seed_7"``); the
seed fixes the plan (who is killed, when, how). Kills from outside also
depend on timing, which no seed fixes, so the plan is printed on failure.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from store_workers import dead_journal, flow_run, log, new_id, state, task_run

from kernelflow.errors import StoreFullError, StoreNotWritableError
from kernelflow.store import compact
from kernelflow.store.db import connect
from kernelflow.store.journal import Journal, current_journal, record

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKERS = HERE / "fault_workers.py"
#: Generous bounds for one child on a loaded 2-core machine; none is expected to be reached.
CHILD_TIMEOUT = 120
STATES = "SELECT state_name FROM states WHERE run_id = ? ORDER BY seq"
#: Plans tried by the property test (about 3 s each on a loaded 2-core machine).
SEEDS = 20


def rows(paths, query, params=None):
    """Query the database directly, without compacting first."""
    with connect(paths, read_only=True) as con:
        return con.execute(query, params).fetchall()


@pytest.fixture
def children():
    """Start worker processes; every one still running at teardown is killed and reaped."""
    started: list[subprocess.Popen] = []

    def start(role: str, arguments: dict, *, stderr, **env: str) -> subprocess.Popen:
        child_env = dict(os.environ, **env)
        child_env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO), str(HERE), child_env.get("PYTHONPATH")])
        )
        child = subprocess.Popen(
            [sys.executable, str(WORKERS), role, json.dumps(arguments)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=child_env,
        )
        started.append(child)
        return child

    yield start
    for child in started:
        if child.poll() is None:
            child.kill()
        child.wait(CHILD_TIMEOUT)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def complete_lines(data: bytes) -> list[str]:
    """The lines a child finished writing (a line cut by a kill is no acknowledgement)."""
    return data.decode()[: data.rfind(b"\n") + 1].splitlines()


@dataclass
class Writer:
    """One writer process of a seed's plan, and what it acknowledged."""

    flows: int
    tasks: int
    fate: str  # "survive", "kill" (from outside) or "torn" (kills itself mid-append)
    kill_after_lines: int = 0
    kill_delay: float = 0.0
    torn_append: int = 0
    cut: float = 0.5
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def killed(self) -> bool:
        return self.process.returncode == -signal.SIGKILL

    def facts(self, kind: str) -> list[list[str]]:
        return [line.split()[1:] for line in self.lines if line.startswith(f"{kind} ")]


def plan(seed: int) -> tuple[list[Writer], str, float]:
    """Writers, the compactor's kill stage ("" = killed from outside) and its kill delay."""
    rng = random.Random(seed)
    writers = []
    for _ in range(rng.choice([2, 3])):
        flows, tasks = rng.randint(2, 4), rng.randint(1, 3)
        writers.append(
            Writer(
                flows,
                tasks,
                "survive",
                env={
                    # Writers fold too (a background thread), some of them all the time.
                    "KERNELFLOW_COMPACT_SECONDS": rng.choice(["0.02", "3600", "3600"]),
                    "KERNELFLOW_COMPACT_AT_EXIT": rng.choice(["inline", "off"]),
                },
            )
        )
    for victim in rng.sample(writers, rng.randint(1, len(writers) - 1)):
        victim.fate = rng.choice(["kill", "torn"])
        lines = victim.flows * (victim.tasks + 2)  # B, T per task, A
        victim.kill_after_lines = rng.randint(1, lines)
        victim.kill_delay = rng.uniform(0, 0.02)
        # Appends of a flow: its Pending, Running and final state; four per task
        # (Pending, Running, a log line, the final state); plus the journal header.
        victim.torn_append = rng.randint(1, 1 + victim.flows * (3 + 4 * victim.tasks))
        victim.cut = rng.uniform(0.02, 0.98)
    stage = rng.choice(["", "in_transaction", "after_commit", "after_unlink"])
    return writers, stage, rng.uniform(0.0, 0.6)


class TestSigkill:
    @pytest.mark.parametrize("seed", [pytest.param(s, id=f"seed_{s}") for s in range(SEEDS)])
    def test_no_acknowledged_event_is_lost_and_none_is_imported_twice(
        self, seed, paths, tmp_path, children
    ):
        writers, stage, compactor_delay = plan(seed)
        print(f"plan: compactor stage {stage or 'external'!r} delay {compactor_delay:.3f}")
        for i, w in enumerate(writers):
            print(f"plan: writer {i}: {w}")
        stderr_files = []

        def stderr_file(name: str):
            fh = open(tmp_path / f"{name}.stderr", "wb")  # closed below
            stderr_files.append(fh)
            return fh

        compactor = children("compactor", {"stage": stage}, stderr=stderr_file("compactor"))
        assert compactor.stdout.readline() == b"ready\n"
        for i, w in enumerate(writers):
            arguments = {"flows": w.flows, "tasks": w.tasks}
            if w.fate == "torn":
                arguments.update(torn_append=w.torn_append, cut=w.cut)
            w.process = children("writer", arguments, stderr=stderr_file(f"writer{i}"), **w.env)
        timer = None
        if not stage:
            timer = threading.Timer(compactor_delay, compactor.kill)
            timer.start()
        try:
            for w in writers:
                if w.fate != "kill":
                    continue
                # Wait for the victim's own words, then kill it a moment later.
                for _ in range(w.kill_after_lines):
                    line = w.process.stdout.readline()
                    if not line.endswith(b"\n"):
                        break  # it ended (or was cut) first
                    w.lines.append(line.decode().rstrip("\n"))
                time.sleep(w.kill_delay)  # the seeded moment of the kill, not a wait
                w.process.kill()
            for w in writers:
                w.lines += complete_lines(w.process.stdout.read())
                w.process.wait(CHILD_TIMEOUT)
        finally:
            if timer is not None:
                timer.cancel()
                timer.join()
        compactor.stdin.close()  # the compactor folds once more and ends, if still alive
        compactor.wait(CHILD_TIMEOUT)
        for fh in stderr_files:
            fh.close()

        for i, w in enumerate(writers):
            expected = (0, -signal.SIGKILL) if w.fate != "survive" else (0,)
            assert w.process.returncode in expected, f"writer {i}: {w.process.returncode}"
        assert compactor.returncode in (0, -signal.SIGKILL)
        for path in tmp_path.glob("*.stderr"):
            text = path.read_text()
            assert "Traceback" not in text and "Logging error" not in text, f"{path.name}: {text}"

        print(
            f"outcome: compactor {compactor.returncode}, writers "
            + ", ".join(f"{w.process.returncode} ({len(w.facts('A'))} acked)" for w in writers)
        )
        # A later fold, in a process that took part in nothing.
        report = compact(paths)
        print(f"outcome: {report}")
        assert report.bad_lines == 0
        check_store(paths, writers)


def check_store(paths, writers: list[Writer]) -> None:
    """Every acknowledged event is there once; nothing is there twice; nothing is left running."""
    states = defaultdict(list)
    for run_id, name in rows(paths, "SELECT run_id, state_name FROM states ORDER BY run_id, seq"):
        states[run_id].append(name)
    logs = defaultdict(list)
    for run_id, message in rows(paths, "SELECT run_id, message FROM logs"):
        logs[run_id].append(message)
    runs = {}
    for kind in ("flow", "task"):
        found = rows(paths, f"SELECT id, state_name, pid FROM {kind}_runs")
        assert len(found) == len({r[0] for r in found}), f"a {kind} run imported twice"
        runs.update({r[0]: (r[1], r[2]) for r in found})

    # Nothing twice: no run has a state or a log line twice (no run retries here).
    for run_id, names in states.items():
        assert len(names) == len(set(names)), f"{run_id}: {names}"
    for run_id, messages in logs.items():
        assert len(messages) == len(set(messages)) == 1, f"{run_id}: {messages}"

    writer_pids = {w.process.pid: w for w in writers}
    processes = [pid for (pid,) in rows(paths, "SELECT pid FROM processes")]
    assert len(processes) == len(set(processes)) and set(processes) <= set(writer_pids)

    for w in writers:
        acked_flows = {ids[0]: ids[1:] for ids in w.facts("A")}
        began = {ids[0] for ids in w.facts("B")} | {ids[0] for ids in w.facts("T")}
        for flow_id, task_ids in acked_flows.items():
            for run_id in (flow_id, *task_ids):
                assert runs[run_id][0] == "Completed", (run_id, runs[run_id])
                assert states[run_id] == ["Pending", "Running", "Completed"], run_id
            for run_id in task_ids:
                assert len(logs[run_id]) == 1
        for run_id in began:
            # Its Pending and Running were appended before the child said so: it is
            # there, finished or (if its process was killed first) Crashed.
            assert run_id in runs, run_id
            assert states[run_id][:2] == ["Pending", "Running"], (run_id, states[run_id])
            allowed = {"Completed", "Crashed"} if w.killed else {"Completed"}
            assert runs[run_id][0] in allowed, (run_id, runs[run_id])
        if acked_flows:
            assert w.process.pid in processes
        if not w.killed:
            assert len(acked_flows) == w.flows

    # Nothing is left unfinished: every writer is gone, so every run either ended or
    # was Crashed, and only a killed writer's runs were Crashed.
    for run_id, (name, pid) in runs.items():
        assert name in ("Completed", "Crashed"), (run_id, name)
        if name == "Crashed":
            assert writer_pids[pid].killed, (run_id, pid)
            assert states[run_id][-1] == "Crashed"

    # Dead journals are deleted after their import. (An offset row can outlive its
    # journal when a fold is killed in between: harmless, as a journal's name is never
    # used again, and gone with the next fold; TestCompactorKilledMidFold checks that.)
    assert not any(paths.journal.glob("*.jsonl"))


@pytest.fixture
def no_background_fold(monkeypatch):
    """This process folds only when the test says so.

    Its background compaction would otherwise race the compactor child for the
    first fold. The next test's first journal starts it again.
    """
    from kernelflow.store import compactor

    if compactor.background() is not None:
        compactor.background().stop(timeout=CHILD_TIMEOUT)
    monkeypatch.setattr(compactor, "start_background_compaction", lambda *a, **k: None)


class TestCompactorKilledMidFold:
    """Each step of a fold, killed there for certain (the property test kills it at random)."""

    @pytest.mark.parametrize("stage", ["in_transaction", "after_commit", "after_unlink"])
    @pytest.mark.usefixtures("no_background_fold")
    def test_a_later_fold_imports_each_event_exactly_once(self, stage, paths, tmp_path, children):
        alive = [new_id() for _ in range(3)]
        for run_id in alive:
            record(task_run(run_id))
            record(state(run_id, "Running"))
            record(log(run_id, "alive"))
        gone_flow, gone_task = new_id(), new_id()
        dead = dead_journal(paths.journal)
        dead.write_many(
            [
                flow_run(gone_flow),
                state(gone_flow, "Running", kind="flow"),
                task_run(gone_task, gone_flow),
                state(gone_task, "Running"),
                log(gone_task, "gone"),
            ]
        )

        with open(tmp_path / "compactor.stderr", "wb") as stderr:
            compactor = children("compactor", {"stage": stage}, stderr=stderr)
            assert compactor.stdout.readline() == b"ready\n"
            compactor.wait(CHILD_TIMEOUT)  # it dies in its first fold
        assert compactor.returncode == -signal.SIGKILL
        assert "Traceback" not in (tmp_path / "compactor.stderr").read_text()
        assert dead.path.exists() == (stage != "after_unlink")

        report = compact(paths)

        assert report.bad_lines == 0
        assert report.removed_journals == (0 if stage == "after_unlink" else 1)
        assert sorted(rows(paths, "SELECT run_id, state_name FROM states")) == sorted(
            [(run_id, "Running") for run_id in alive]
            + [
                (gone_flow, "Running"),
                (gone_flow, "Crashed"),
                (gone_task, "Running"),
                (gone_task, "Crashed"),
            ]
        )
        assert sorted(rows(paths, "SELECT run_id, message FROM logs")) == sorted(
            [(run_id, "alive") for run_id in alive] + [(gone_task, "gone")]
        )
        assert rows(paths, "SELECT count(*) FROM processes") == [(2,)]
        assert not dead.path.exists()
        assert [f for (f,) in rows(paths, "SELECT file FROM journal_offsets")] == [
            current_journal().path.name
        ]
        assert compact(paths).events == 0  # and once more: nothing new, nothing twice


# -- a full disk -------------------------------------------------------------------------------


def journal_lines(path: Path) -> tuple[list[dict | bytes], bytes]:
    """The complete lines of a journal (parsed, or the raw bytes of one that is not
    JSON) and the unfinished tail after the last newline."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    lines: list[dict | bytes] = []
    for line in data[:end].splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            lines.append(line)
    return lines, data[end:]


class TestDiskFull:
    # The margin above the journal's size after one flow decides which append of the
    # next flow hits the limit (measured: a flow's creation and Pending, its Running, a
    # task's creation and Pending, its Running, its log line, its Completed, the flow's
    # Completed; lengths vary by a few bytes, so each margin aims at an event's middle).
    @pytest.mark.parametrize("margin", [0, 130, 350, 580, 777, 1040, 1250, 1445, 1650, 4050])
    def test_one_clear_error_and_every_earlier_event_is_kept(
        self, margin, paths, tmp_path, children
    ):
        with open(tmp_path / "child.stderr", "wb") as stderr:
            child = children(
                "fill_journal",
                {"limit_margin": margin, "flows": 50, "tasks": 3},
                stderr=stderr,
                # No database writes under the limit: this is about the journal.
                KERNELFLOW_COMPACT_SECONDS="3600",
                KERNELFLOW_COMPACT_AT_EXIT="off",
            )
            out = child.stdout.read()
            child.wait(CHILD_TIMEOUT)
        lines = complete_lines(out)
        err = (tmp_path / "child.stderr").read_text()

        assert child.returncode == 1, err
        facts = [line.split(" ", 1) for line in lines]
        (error,) = [json.loads(rest) for kind, rest in facts if kind == "E"]
        assert error["type"] == "StoreFullError" and error["module"] == "kernelflow.errors"
        assert error["errno"] == errno.EFBIG
        message = error["message"]
        assert "\n" not in message and "free disk space" in message and "ulimit -f" in message
        assert error["render"] == [f"StoreFullError: {message}"]  # one line in a notebook
        assert not error["chained"]
        # The script's user sees one traceback, ending in the clear line; no second error
        # raised while handling the first, no traceback per log line.
        assert err.count("Traceback (most recent call last)") == 1, err
        assert "During handling" not in err and "Logging error" not in err, err
        assert err.rstrip().splitlines()[-1] == f"kernelflow.errors.StoreFullError: {message}"
        # Said once more at most: as the one log line when a run's log line failed first.
        assert err.count(message) <= 2, err

        (journal,) = paths.journal.glob("*.jsonl")
        # The write that hit the limit may have left a torn tail (the file is full to the
        # byte, so nothing is appended after it); every complete line is an event.
        events, _tail = journal_lines(journal)
        assert all(isinstance(e, dict) for e in events)
        report = compact(paths)
        assert report.bad_lines == 0 and report.events == len(events)

        acked = [rest.split() for kind, rest in facts if kind == "A"]
        assert acked, "not even the first flow ran"
        for flow_id, *task_ids in acked:
            for run_id in (flow_id, *task_ids):
                names = [n for (n,) in rows(paths, STATES, [run_id])]
                assert names == ["Pending", "Running", "Completed"], (run_id, names)
            assert rows(
                paths, "SELECT count(*) FROM logs WHERE run_id IN (SELECT unnest(?))", [task_ids]
            ) == [(len(task_ids),)]
        # The run the error stopped (if its creation still fit): Failed with the error if
        # that state fit too, else Crashed once its process was gone. Never left Running.
        stopped = {rest for kind, rest in facts if kind == "B"} - {ids[0] for ids in acked}
        assert len(stopped) <= 1
        for run_id in stopped:
            assert rows(paths, "SELECT state_name FROM flow_runs WHERE id = ?", [run_id]) in (
                [("Failed",)],
                [("Crashed",)],
            )
        for kind in ("flow", "task"):
            unfinished = rows(
                paths,
                f"SELECT id, state_name FROM {kind}_runs "
                "WHERE state_name NOT IN ('Completed', 'Failed', 'Crashed')",
            )
            assert unfinished == []

    def test_after_space_is_freed_the_journal_goes_on_with_whole_lines(self, paths, tmp_path):
        # The limit falls inside an event: its first bytes are written, the rest fails.
        code = """
import json, resource, signal, sys
from kernelflow.errors import StoreFullError
from kernelflow.store.journal import current_journal, record
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
record({"ev": "log", "run_id": None, "message": "first"})
size = current_journal().path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, resource.RLIM_INFINITY))
kept = []
try:
    for i in range(100):
        record({"ev": "log", "run_id": None, "message": f"line {i}", "pad": "x" * 30})
        kept.append(i)
except StoreFullError as exc:
    failed = str(exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
record({"ev": "log", "run_id": None, "message": "after"})  # space is back
print(json.dumps({"kept": kept, "failed": failed}))
"""
        env = dict(os.environ, KERNELFLOW_COMPACT_SECONDS="3600", KERNELFLOW_COMPACT_AT_EXIT="off")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=True,
        )
        result = json.loads(done.stdout)
        assert 0 < len(result["kept"]) < 100 and "File too large" in result["failed"]

        (journal,) = paths.journal.glob("*.jsonl")
        lines, tail = journal_lines(journal)
        assert tail == b""
        # The event that hit the limit left its first bytes; the next append ended that
        # line before its own, so it is one unreadable line, and nothing is glued to it.
        *kept, torn, after = lines[1:]  # after the header
        assert [e["message"] for e in kept] == ["first"] + [f"line {i}" for i in result["kept"]]
        failed = len(result["kept"])
        assert isinstance(torn, bytes)
        event = {"ev": "log", "run_id": None, "message": f"line {failed}", "pad": "x" * 30}
        assert json.dumps(event, separators=(",", ":")).encode().startswith(torn)
        assert after["message"] == "after"
        report = compact(paths)
        assert report.bad_lines == 1 and report.events == len(lines)
        messages = [m for (m,) in rows(paths, "SELECT message FROM logs ORDER BY seq")]
        assert messages == [e["message"] for e in kept] + ["after"]

    def test_a_log_line_that_did_not_fit_is_said_once_by_the_next_append(self, paths):
        # Log lines never raise (a log line must not break a run); the next append
        # raises the error or, when it fits, logs it: once either way.
        code = """
import resource, signal
from kernelflow.store.journal import current_journal, record, record_quietly
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
record({"ev": "log", "run_id": None, "message": "first"})
size = current_journal().path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, resource.RLIM_INFINITY))
for i in range(3):
    record_quietly({"ev": "log", "run_id": None, "message": f"lost {i}"})
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
record({"ev": "log", "run_id": None, "message": "fits"})
record({"ev": "log", "run_id": None, "message": "fits too"})
"""
        env = dict(os.environ, KERNELFLOW_COMPACT_SECONDS="3600", KERNELFLOW_COMPACT_AT_EXIT="off")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            check=True,
        )
        (said,) = done.stderr.splitlines()
        assert said.startswith("kernelflow: Cannot append to the journal") and "ulimit" in said
        report = compact(paths)
        assert report.bad_lines == 1  # the first lost line's torn start
        messages = [m for (m,) in rows(paths, "SELECT message FROM logs ORDER BY seq")]
        assert messages == ["first", "fits", "fits too"]

    @pytest.mark.parametrize(
        ("code", "cls"),
        [
            (errno.ENOSPC, StoreFullError),
            (errno.EDQUOT, StoreFullError),
            (errno.EFBIG, StoreFullError),
            (errno.EACCES, StoreNotWritableError),
            (errno.EIO, StoreNotWritableError),
        ],
    )
    def test_every_no_room_errno_is_the_same_error(self, code, cls, paths):
        error = Journal(paths.journal)._error(OSError(code, os.strerror(code)))
        assert type(error) is cls and error.errno == code
        assert os.strerror(code) in str(error) and "\n" not in str(error)
        assert isinstance(error, StoreNotWritableError)  # what code catching it before still sees
