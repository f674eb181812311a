"""Compaction: fold throughput and memory, and what background folding costs a flow.

Rows written to ``bench/out/bench_compaction.json`` (format: ``bench/report.py``):

- *fold time per 100k task runs* and *fold peak extra RSS*, for journals of
  10 MB, 100 MB and 1 GB (``--quick``: 10 and 100 MB). Each journal is written
  with the real journal writer (:class:`kernelflow.store.journal.Journal`)
  from the events a real flow recorded once (the template: a flow run and one
  task run's lines, repeated with fresh ids and times), then folded into a
  fresh store by a fresh process. Extra RSS is the folding process's peak
  minus its RSS just before the fold (DuckDB imported, the database open):
  what the fold itself adds. Times run up to the database's close (its
  last checkpoint).
- *per-task cost with background compaction* (``auto`` and ``inline``)
  against the same flow with background compaction off, interleaved.

The journals live in a temporary directory deleted at the end (1 GB: make
sure ``$TMPDIR`` has room).

Usage: ``python bench/bench_compaction.py [--quick] [--repeat N]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
ROOT = BENCH.parent

#: One flow run of one task: its lines are the template of every generated journal.
_TEMPLATE_FLOW = """
from kernelflow import flow, task

@task
def one(i):
    return i

@flow
def template():
    one(0)

template()
"""

#: Fold a store's journals in this (fresh) process; print seconds, runs, RSS before and peak.
_FOLD = """
import json, resource, sys, time
import duckdb  # loaded before the baseline: a fixed cost, not the fold's (no pyarrow: unused)
from kernelflow import settings
from kernelflow.store import db
import kernelflow.store.compact
compact_module = sys.modules["kernelflow.store.compact"]

def rss_mb():
    with open("/proc/self/status") as fh:
        return int(fh.read().split("VmRSS:")[1].split()[0]) / 1024

paths = settings.paths()
with db.connect(paths) as con:
    con.execute("SELECT count(*) FROM task_runs").fetchall()
    before = rss_mb()
    report = compact_module.CompactReport()
    started, cpu = time.perf_counter(), time.process_time()
    compact_module.fold(con, paths, report)
# Timed up to the close, which checkpoints what the fold left in the WAL.
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
with db.connect(paths) as con:
    (runs,) = con.execute("SELECT count(*) FROM task_runs").fetchall()[0]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "cpu": cpu, "task_runs": runs, "rss_before": before,
                  "peak": peak}))
"""

#: A flow of n trivial tasks; writes its wall time per task (µs) to argv[2].
_FLOW = """
import sys, time
from kernelflow import flow, task

@task
def trivial(i):
    return i

@flow
def many(n):
    for i in range(n):
        trivial(i)

n = int(sys.argv[1])
started = time.perf_counter()
many(n)
per_task = (time.perf_counter() - started) / n * 1e6
with open(sys.argv[2], "w") as fh:
    fh.write(repr(per_task))
"""


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, KERNELFLOW_HOME=str(home), KERNELFLOW_COMPACT_AT_EXIT="off")
    env.update(extra)
    return env


def record_template(workdir: Path) -> list[dict]:
    """The journal lines of one real flow run of one task."""
    home = workdir / "template"
    subprocess.run(
        [sys.executable, "-c", _TEMPLATE_FLOW],
        env=_env(home, KERNELFLOW_COMPACT_SECONDS="3600"),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (journal,) = (home / "journal").glob("*.jsonl")
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    shutil.rmtree(home)
    return lines


def write_journal(home: Path, target_bytes: int, template: list[dict]) -> int:
    """Write a journal of about ``target_bytes`` with the real writer; return its task runs."""
    os.environ["KERNELFLOW_HOME"] = str(home)
    os.environ["KERNELFLOW_COMPACT_SECONDS"] = "3600"  # this process must not fold it
    os.environ["KERNELFLOW_JOURNAL_ROTATE_MB"] = str(1 << 20)  # one file: the worst case
    from kernelflow import settings
    from kernelflow.runs import new_id
    from kernelflow.store.journal import Journal

    settings.use_home(home)
    flow_lines = [e for e in template if e.get("kind") == "flow" or e.get("ev") == "flow_run"]
    task_lines = [e for e in template if e.get("kind") == "task" or e.get("ev") == "task_run"]
    journal = Journal(settings.paths().journal)
    written, tasks, t0 = 0, 0, time.time()
    while written < target_bytes:
        flow_id = new_id()
        events = []
        for line in flow_lines[:-1]:  # created, Pending, Running
            events.append(_with(line, flow_id, t0 + tasks * 1e-5))
        for i in range(10_000):
            task_id, t = new_id(), t0 + tasks * 1e-5
            for line in task_lines:
                event = _with(line, task_id, t)
                if event["ev"] == "task_run":
                    event.update(flow_run_id=flow_id, name=f"one-{i}")
                events.append(event)
            tasks += 1
            if len(events) >= 4000:
                journal.write_many(events)
                events = []
            if (
                i % 1000 == 999
                and journal.path.exists()
                and journal.path.stat().st_size >= target_bytes
            ):
                break
        events.append(_with(flow_lines[-1], flow_id, t0 + tasks * 1e-5))  # Completed
        journal.write_many(events)
        written = journal.path.stat().st_size
    journal.close()
    return tasks


def _with(line: dict, run_id: str, t: float) -> dict:
    event = dict(line)
    event["id" if event["ev"] in ("flow_run", "task_run") else "run_id"] = run_id
    event["t"] = t
    for key in ("start_time", "end_time"):
        if event.get(key) is not None:
            event[key] = t
    return event


def fold_in_fresh_process(home: Path) -> dict:
    """Fold ``home``'s journals in a new process; its figures."""
    out = subprocess.run(
        [sys.executable, "-c", _FOLD],
        env=_env(home),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def flow_cost(workdir: Path, n: int, mode: str) -> float:
    """µs per task of an n-task flow, with background compaction ``mode`` (off/auto/inline)."""
    home = workdir / f"flow-{mode}"
    shutil.rmtree(home, ignore_errors=True)
    result = workdir / "per_task.txt"
    extra = {"KERNELFLOW_COMPACT_SECONDS": "1000000"} if mode == "off" else {}
    if mode != "off":
        extra["KERNELFLOW_COMPACT_BACKGROUND"] = mode
    subprocess.run(
        [sys.executable, "-c", _FLOW, str(n), str(result)],
        env=_env(home, **extra),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    per_task = float(result.read_text())
    shutil.rmtree(home, ignore_errors=True)
    return per_task


def pending_bytes_row(workdir: Path, repeat: int) -> dict:
    """How long :func:`pending_bytes` takes over 100 journals (no DuckDB), in ms."""
    from kernelflow.settings import StorePaths
    from kernelflow.store.journals import pending_bytes

    paths = StorePaths(workdir / "pending")
    paths.journal.mkdir(parents=True)
    for i in range(100):
        (paths.journal / f"host--{1000 + i}--1--deadbeef.jsonl").write_bytes(b"{}\n" * 100)
    samples = []
    for _ in range(max(5, repeat * 5)):
        started = time.perf_counter()
        pending_bytes(paths)
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "section": "compaction",
        "label": "pending_bytes over 100 journals",
        "n": 100,
        "unit": "ms",
        "kernelflow": samples,
        "baseline_name": None,
        "baseline": None,
        "target": {"max": 5},
        "notes": "file sizes minus the offsets the last fold recorded; DuckDB not imported",
    }


def main() -> None:
    """Run the measurements and write ``bench/out/bench_compaction.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 and 100 MB, 1 repeat, n=10k")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    sizes = [10, 100] if args.quick else [10, 100, 1000]
    n_flow = 10_000 if args.quick else 100_000
    quick = " (quick)" if args.quick else ""
    rows = []
    workdir = Path(tempfile.mkdtemp(prefix="kf-bench-compaction-"))
    try:
        template = record_template(workdir)
        for megabytes in sizes:
            source = workdir / f"journal-{megabytes}mb"
            # Written in a child: the writer is this module's code, in a clean process.
            code = (
                f"import sys; sys.path.insert(0, {str(BENCH)!r});"
                "import json, bench_compaction as b;"
                f"print(b.write_journal(__import__('pathlib').Path({str(source)!r}), "
                f"{megabytes << 20}, json.loads({json.dumps(json.dumps(template))})))"
            )
            made = subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True
            )
            tasks = int(made.stdout.strip().splitlines()[-1])
            journal_bytes = sum(p.stat().st_size for p in (source / "journal").glob("*.jsonl"))
            per_100k, cpu_100k, extra_mb = [], [], []
            for _ in range(repeat):
                home = workdir / "fold"
                shutil.rmtree(home, ignore_errors=True)
                shutil.copytree(source, home)
                figures = fold_in_fresh_process(home)
                if figures["task_runs"] != tasks:
                    raise SystemExit(f"fold imported {figures['task_runs']} of {tasks} task runs")
                per_100k.append(figures["seconds"] / tasks * 100_000)
                cpu_100k.append(figures["cpu"] / tasks * 100_000)
                extra_mb.append(figures["peak"] - figures["rss_before"])
                shutil.rmtree(home, ignore_errors=True)
            shutil.rmtree(source, ignore_errors=True)
            notes = (
                f"{journal_bytes / 2**20:.0f} MB journal, {tasks} task runs "
                f"({journal_bytes / tasks:.0f} bytes each), one fresh process per fold{quick}"
            )
            rows.append(
                {
                    "section": "compaction",
                    "label": f"fold time per 100k task runs, {megabytes} MB journal",
                    "n": tasks,
                    "unit": "s",
                    "kernelflow": per_100k,
                    "baseline_name": None,
                    "baseline": None,
                    # >= 300k task runs/s, as seconds per 100k.
                    "target": {"max": 100_000 / 300_000},
                    "notes": notes,
                }
            )
            rows.append(
                {
                    "section": "compaction",
                    "label": f"fold CPU time per 100k task runs, {megabytes} MB journal",
                    "n": tasks,
                    "unit": "s",
                    "kernelflow": cpu_100k,
                    "baseline_name": None,
                    "baseline": None,
                    "target": {"max": 100_000 / 300_000},
                    "notes": "the same folds' CPU time: on a shared machine, the work itself"
                    + quick,
                }
            )
            rows.append(
                {
                    "section": "compaction",
                    "label": f"fold peak extra RSS, {megabytes} MB journal",
                    "n": tasks,
                    "unit": "MB",
                    "kernelflow": extra_mb,
                    "baseline_name": None,
                    "baseline": None,
                    "target": {"max": 64},
                    "notes": "peak RSS minus RSS before the fold (duckdb in; store open)" + quick,
                }
            )
        rows.append(pending_bytes_row(workdir, repeat))
        costs: dict[str, list[float]] = {"off": [], "auto": [], "inline": []}
        for _ in range(repeat):  # interleaved, so load changes hit every mode alike
            for mode in costs:
                costs[mode].append(flow_cost(workdir, n_flow, mode))
        for mode in ("auto", "inline"):
            rows.append(
                {
                    "section": "compaction",
                    "label": f"per-task cost with background compaction ({mode})",
                    "n": n_flow,
                    "unit": "µs/task",
                    "kernelflow": costs[mode],
                    "baseline_name": "background compaction off",
                    "baseline": costs["off"],
                    "target": {"ratio_max": 1.1},
                    "notes": f"sequential flow of trivial tasks, wall time{quick}; "
                    + (
                        "auto: backlogs over 1 MB folded in a child process the thread waits for"
                        if mode == "auto"
                        else "inline: folded in the thread, pausing between batches"
                    ),
                }
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_compaction.json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    for row in rows:
        print(row["label"], [round(v, 3) for v in row["kernelflow"]], row.get("baseline"))


if __name__ == "__main__":
    main()
