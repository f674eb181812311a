"""The orchestration API a scenario runs against, and the helpers every scenario shares.

A scenario is written once against Prefect 3's public API and imports it from here::

    from _api import args, flow, report, task

``BENCH_API`` (set by ``bench/run.py``) chooses the library: ``kernelflow`` or ``prefect``
(``joblib`` for scenarios that take a plain-Python baseline, which then import nothing
here but the helpers). Each scenario prints its figures as one JSON line through
:func:`report`; ``run.py`` merges every JSON line a run prints.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import os
import resource
import subprocess
import sys
import time

API = os.environ.get("BENCH_API", "kernelflow")

if API in ("kernelflow", "prefect"):
    _lib = importlib.import_module(API)
    flow = _lib.flow
    task = _lib.task
    task_input_hash = importlib.import_module(f"{API}.tasks").task_input_hash

    @flow
    def warm_up() -> int:
        """A trivial flow: run first where a figure must not include Prefect's server start."""
        return 1


def args(**defaults: int) -> argparse.Namespace:
    """Parse ``--name value`` integer options with the given defaults, plus ``--phase``."""
    parser = argparse.ArgumentParser()
    for name, value in defaults.items():
        parser.add_argument(f"--{name}", type=int, default=value)
    parser.add_argument("--phase", default="")
    return parser.parse_args()


def report(**figures: object) -> None:
    """Print one JSON line of figures for ``run.py`` to collect."""
    print(json.dumps(figures), flush=True)


def report_peak_rss_at_exit() -> None:
    """At exit, report this process's peak RSS and that of its largest reaped child.

    Registered before the library starts anything, so it runs after the library's own
    exit handlers (``atexit`` runs last-registered first): by then Prefect has stopped and
    reaped its temporary API server, so ``RUSAGE_CHILDREN`` holds the server's peak.
    """

    def _report() -> None:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        report(peak_rss_mb=own + child, peak_rss_self_mb=own, peak_rss_children_mb=child)

    atexit.register(_report)


def run_self(*argv: str) -> dict:
    """Run this scenario again in a fresh process; return its figures plus whole-tree costs.

    ``cpu_s`` is user + system CPU of the child and every descendant it reaped (Prefect's
    API server included); ``wall_s`` is the child's whole lifetime.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, sys.argv[0], *argv], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{sys.argv[0]} {' '.join(argv)} exited with {done.returncode}")
    figures: dict = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            figures.update(json.loads(line))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {**figures, "wall_s": wall, "cpu_s": cpu}
