"""The orchestration API a scenario runs against, and the helpers every scenario shares.

A scenario is written once against Prefect 3's public API and imports it from here::

    from _api import args, flow, report, task

Importing this module registers the at-exit report of peak memory (see
:func:`_report_at_exit`) before the library is imported.

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
import sys

API = os.environ.get("BENCH_API", "kernelflow")


def report(**figures: object) -> None:
    """Print one JSON line of figures for ``run.py`` to collect."""
    print(json.dumps(figures), flush=True)


def _report_at_exit() -> None:
    """Report this process's peak RSS and that of its largest reaped child, as it exits.

    Registered before the library is imported, so it runs after every exit handler the
    library registers (``atexit`` runs last-registered first): by then Prefect has
    stopped and reaped its temporary API server (``RUSAGE_CHILDREN`` holds the server's
    peak) and kernelflow has folded its journal into DuckDB in this process
    (``run.py`` sets ``KERNELFLOW_COMPACT_AT_EXIT=inline``), so both peaks include all
    of the library's work. For kernelflow it also reports the journal bytes still not
    folded (``pending_bytes``), which ``run.py`` puts in the rows' notes if not zero.
    """
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    figures: dict[str, object] = {
        "peak_rss_mb": own + child,
        "peak_rss_self_mb": own,
        "peak_rss_children_mb": child,
    }
    if API == "kernelflow" and "kernelflow" in sys.modules:
        try:
            from kernelflow import settings
            from kernelflow.store.compact import pending_bytes
        except ImportError:  # an older kernelflow: the check cannot be made
            figures["unfolded_bytes"] = None
        else:
            figures["unfolded_bytes"] = pending_bytes(settings.paths())
    report(**figures)


atexit.register(_report_at_exit)

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
