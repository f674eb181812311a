"""Per-task cost and peak memory of a long sequential flow, at 10k, 100k and 1M tasks.

Each measurement is a fresh Python process running, with kernelflow's defaults (console
logging at INFO, the journal, background compaction), one flow that calls a trivial task
``n`` times in sequence::

    @task
    def inc(x): return x + 1

    @flow
    def chain(n):
        s = 0
        for _ in range(n):
            s = inc(s)

All of kernelflow's work is counted: the process folds its journal into DuckDB before it
exits (``KERNELFLOW_COMPACT_AT_EXIT=inline``), and this script makes itself the child
subreaper (``PR_SET_CHILD_SUBREAPER``), so a compaction process started by the flow and
left behind is reaped here too, and its CPU and memory counted. The CPU of the whole
process tree comes from ``wait4``; the same process with a flow of no task (imports,
flow run, exit fold) is measured in every repeat and subtracted, so the figure is what
each task adds. The console goes to ``/dev/null``.

Rows (see ``bench/report.py``): CPU µs per task at each n (target at most 20), the same
figures with a flatness target (largest n over smallest within 1.2), and the peak RSS of
the flow's process at each n (the largest compaction child's peak added when one ran;
target at most 150 MB). Then the same flows with compaction switched off, in every
repeat, so the engine's own cost and memory can be told apart from the fold's.

Usage::

    python bench/bench_scale.py            # 10k, 100k, 1M; 3 repeats, interleaved
    python bench/bench_scale.py --quick    # 10k, 100k; 1 repeat
    python bench/bench_scale.py --sizes 10000 50000 --repeats 2
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import row, write_rows  # bench/ is not a package: found on sys.path

SECTION = "Scale: sequential trivial tasks"
CHILD = """
import sys
from kernelflow import flow, task

@task
def inc(x):
    return x + 1

@flow
def chain(n):
    s = 0
    for _ in range(n):
        s = inc(s)
    return s

chain(int(sys.argv[1]))
"""
PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Measure:
    """The process tree of one run: CPU seconds, wall seconds, peak RSS (MB)."""

    cpu: float
    wall: float
    flow_rss_mb: float
    helper_rss_mb: float
    helpers: int


def become_subreaper() -> None:
    """Adopt the orphans of our children (a detached compaction), so wait4 counts them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


#: Compaction switched off (a period longer than any run, nothing at exit): the flow alone.
NO_COMPACTION = {"KERNELFLOW_COMPACT_SECONDS": "1000000", "KERNELFLOW_COMPACT_AT_EXIT": "off"}


def run_once(n: int, compaction: bool = True) -> Measure:
    """Run the flow of ``n`` tasks in a fresh process and store home; reap the whole tree.

    With ``compaction=False`` nothing is folded: the cost of the flow's process alone.
    """
    home = tempfile.mkdtemp(prefix="kf-bench-scale-")
    env = dict(os.environ, KERNELFLOW_HOME=home, KERNELFLOW_COMPACT_AT_EXIT="inline")
    if not compaction:
        env.update(NO_COMPACTION)
    devnull = [
        (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    try:
        start = time.perf_counter()
        pid = os.posix_spawn(
            sys.executable, [sys.executable, "-c", CHILD, str(n)], env, file_actions=devnull
        )
        cpu = 0.0
        flow_rss = helper_rss = 0.0
        helpers = 0
        status = None
        while True:
            try:
                reaped, code, usage = os.wait4(-1, 0)
            except ChildProcessError:
                break  # the flow's process and every process it left behind are done
            cpu += usage.ru_utime + usage.ru_stime
            if reaped == pid:
                status, flow_rss = code, usage.ru_maxrss / 1024
            else:
                helpers += 1
                helper_rss = max(helper_rss, usage.ru_maxrss / 1024)
        wall = time.perf_counter() - start
        if status is None or os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"the flow of {n} tasks failed (wait status {status})")
        return Measure(cpu, wall, flow_rss, helper_rss, helpers)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    """Measure, interleaving the sizes and the zero-task process in every repeat."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k, one repeat")
    parser.add_argument("--sizes", type=int, nargs="+", help="task counts (default 10k 100k 1M)")
    parser.add_argument("--repeats", type=int, help="repeats of each size (default 3)")
    args = parser.parse_args()
    sizes = args.sizes or ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    repeats = args.repeats or (1 if args.quick else 3)
    become_subreaper()
    zero: list[Measure] = []
    gross: dict[int, list[Measure]] = {n: [] for n in sizes}
    zero_alone: list[Measure] = []
    alone: dict[int, list[Measure]] = {n: [] for n in sizes}
    for r in range(repeats):
        zero.append(run_once(0))
        zero_alone.append(run_once(0, compaction=False))
        for n in sizes:
            gross[n].append(run_once(n))
            alone[n].append(run_once(n, compaction=False))
            m, a = gross[n][-1], alone[n][-1]
            print(
                f"repeat {r + 1}/{repeats} n={n}: {m.cpu:.2f} s CPU (zero {zero[-1].cpu:.2f} s), "
                f"{m.wall:.1f} s wall, peak RSS {m.flow_rss_mb:.0f} MB, helpers {m.helpers}; "
                f"without compaction {a.cpu:.2f} s CPU (zero {zero_alone[-1].cpu:.2f} s), "
                f"peak RSS {a.flow_rss_mb:.0f} MB",
                file=sys.stderr,
            )
    quick = " Quick run (--quick): one repeat." if args.quick else ""
    load = "load average {:.2f} {:.2f} {:.2f} at the end.".format(*os.getloadavg())
    rows = []
    per_task: dict[int, list[float]] = {}
    for n in sizes:
        # Repeat i's figure is its gross CPU less the zero-task process of the same repeat.
        per_task[n] = [(g.cpu - z.cpu) / n * 1e6 for g, z in zip(gross[n], zero, strict=True)]
        zero_work = {
            "unit": "s CPU (process tree)",
            "gross": [g.cpu for g in gross[n]],
            "zero": [z.cpu for z in zero],
        }
        walls = ", ".join(f"{g.wall:.1f}" for g in gross[n])
        notes = (
            f"CPU of the whole process tree (flow process, its exit fold, any compaction "
            f"child) less a zero-task flow process, over n. Wall s: {walls}. {load}{quick}"
        )
        rows.append(
            row(
                SECTION,
                "CPU per task",
                "µs",
                per_task[n],
                {"max": 20},
                n=n,
                notes=notes,
                zero_work=zero_work,
            )
        )
        rows.append(
            row(
                SECTION,
                "CPU per task, flatness",
                "µs",
                per_task[n],
                {"flat_within": 1.2},
                n=n,
                notes="Largest n's median over the smallest n's." + quick,
                zero_work=zero_work,
            )
        )
        helpers = max(g.helpers for g in gross[n])
        # wait4 reports a process's peak or its waited-for children's, whichever is larger:
        # the background folds the flow's compactor waited for are in the flow's figure.
        rss_notes = (
            "Peak RSS of the flow's process (its exit fold included) or of a background "
            "fold it waited for, whichever is larger"
        )
        if helpers:
            rss_notes += ", plus the largest compaction child's peak"
        rows.append(
            row(
                SECTION,
                "peak RSS",
                "MB",
                [g.flow_rss_mb + g.helper_rss_mb for g in gross[n]],
                {"max": 150},
                n=n,
                notes=f"{rss_notes}; zero-task process: "
                f"{statistics.median(z.flow_rss_mb for z in zero):.0f} MB.{quick}",
            )
        )
    # The same flows with compaction off: what the engine costs, told apart from the fold.
    # Not the defaults, so not the headline; the rows above count all of the work.
    for n in sizes:
        rows.append(
            row(
                SECTION,
                "CPU per task, flow process alone (compaction off)",
                "µs",
                [(a.cpu - z.cpu) / n * 1e6 for a, z in zip(alone[n], zero_alone, strict=True)],
                {"max": 20},
                n=n,
                notes="As 'CPU per task' with KERNELFLOW_COMPACT_SECONDS=1000000 and "
                "KERNELFLOW_COMPACT_AT_EXIT=off: the engine, journal and console, no fold." + quick,
                zero_work={
                    "unit": "s CPU (process tree)",
                    "gross": [a.cpu for a in alone[n]],
                    "zero": [z.cpu for z in zero_alone],
                },
            )
        )
        rows.append(
            row(
                SECTION,
                "peak RSS, flow process alone (compaction off)",
                "MB",
                [a.flow_rss_mb for a in alone[n]],
                {"max": 150},
                n=n,
                notes="The flow's own memory: no fold in or out of the process." + quick,
            )
        )
    path = write_rows(__file__, rows)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
