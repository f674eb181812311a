"""Benchmarks of issue 3: concurrency slots and the process and Dask task runners.

Figures, all measured in this run on this machine:

1. uncontended ``with concurrency("k"):`` acquire + release, µs per pair
   (target <= 1000 µs);
2. a CPU-bound ``.map()`` of 8 equal pure-Python tasks: wall time of the flow
   with the default thread runner, with ``ProcessPoolTaskRunner(max_workers=2)``
   and with ``DaskTaskRunner`` on a LocalCluster of 2 single-threaded workers;
   the speed-up over threads (target >= 1.7x on 2 cores). Dask is measured
   twice: with the cluster started by the flow run (as
   ``DaskTaskRunner(cluster_kwargs=...)`` does, its ~3-4 s start included) and
   with a running cluster given by address, the steady state a user with a
   long-lived cluster sees.

Usage: ``python bench/bench_concurrency.py [--task-seconds 0.75] [--quick]``.
Prints a table and one JSON line of figures; writes ``bench/out/concurrency.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"


def burn(n: int) -> int:
    """Pure-Python CPU work: no call releases the GIL."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def calibrate(seconds: float) -> int:
    """Loop count for which :func:`burn` takes about ``seconds`` here."""
    n = 200_000
    while True:
        start = time.perf_counter()
        burn(n)
        took = time.perf_counter() - start
        if took > 0.1:
            return int(n * seconds / took)
        n *= 2


def bench_slots(pairs: int) -> float:
    from kernelflow.concurrency import create_limit
    from kernelflow.concurrency.sync import concurrency

    create_limit("bench-k", 2)
    for _ in range(200):  # warm caches
        with concurrency("bench-k"):
            pass
    start = time.perf_counter()
    for _ in range(pairs):
        with concurrency("bench-k"):
            pass
    return (time.perf_counter() - start) / pairs * 1e6


def bench_runner(runner, n: int, tasks: int = 8) -> float:
    from kernelflow import flow, task

    work = task(burn)

    @flow(task_runner=runner)
    def crunch(sizes: list[int]) -> list[int]:
        return work.map(sizes).result()

    start = time.perf_counter()
    results = crunch([n] * tasks)
    wall = time.perf_counter() - start
    assert len(results) == tasks and len(set(results)) == 1
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task-seconds", type=float, default=0.75,
                        help="CPU seconds of each of the 8 tasks (default 0.75)")
    parser.add_argument("--quick", action="store_true", help="short tasks, fewer pairs")
    opts = parser.parse_args()
    seconds = 0.2 if opts.quick else opts.task_seconds

    home = Path(tempfile.mkdtemp(prefix="kernelflow-bench-concurrency-"))
    os.environ["KERNELFLOW_HOME"] = str(home)
    os.environ["KERNELFLOW_LOGGING_LEVEL"] = "WARNING"
    try:
        from distributed import LocalCluster

        from kernelflow.dask import DaskTaskRunner
        from kernelflow.runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

        slot_us = bench_slots(2_000 if opts.quick else 20_000)
        n = calibrate(seconds)
        threads = bench_runner(ThreadPoolTaskRunner(), n)
        processes = bench_runner(ProcessPoolTaskRunner(max_workers=2), n)
        cluster = {"n_workers": 2, "threads_per_worker": 1}
        dask_cold = bench_runner(DaskTaskRunner(cluster_kwargs=cluster), n)
        with LocalCluster(dashboard_address=None, **cluster) as running:
            dask_warm = bench_runner(DaskTaskRunner(address=running.scheduler_address), n)
    finally:
        shutil.rmtree(home, ignore_errors=True)

    figures = {
        "cpus": os.cpu_count(),
        "task_seconds": seconds,
        "slot_acquire_release_us": slot_us,
        "threads_s": threads,
        "processes_s": processes,
        "dask_cold_s": dask_cold,
        "dask_warm_s": dask_warm,
        "process_speedup": threads / processes,
        "dask_cold_speedup": threads / dask_cold,
        "dask_warm_speedup": threads / dask_warm,
    }

    def met(ok: bool) -> str:
        return "yes" if ok else "no"

    rows = [
        "| figure | value | target | met |",
        "|---|---|---|---|",
        f"| uncontended concurrency() acquire + release | {slot_us:.1f} µs | <= 1000 µs "
        f"| {met(slot_us <= 1000)} |",
        f"| 8 CPU tasks, thread runner | {threads:.2f} s | (baseline) | |",
        f"| 8 CPU tasks, ProcessPoolTaskRunner(2) | {processes:.2f} s, "
        f"{figures['process_speedup']:.2f}x | >= 1.7x | {met(figures['process_speedup'] >= 1.7)} |",
        f"| 8 CPU tasks, Dask, running LocalCluster (2 workers) | {dask_warm:.2f} s, "
        f"{figures['dask_warm_speedup']:.2f}x | >= 1.7x "
        f"| {met(figures['dask_warm_speedup'] >= 1.7)} |",
        f"| 8 CPU tasks, Dask, LocalCluster started by the flow | {dask_cold:.2f} s, "
        f"{figures['dask_cold_speedup']:.2f}x | (cluster start included) | |",
    ]
    header = (f"- {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
              f"each task {seconds:g} s of pure-Python CPU work")
    report = "\n".join([header, "", *rows])
    print(report)
    print(json.dumps(figures))
    OUT.mkdir(exist_ok=True)
    (OUT / "concurrency.md").write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
